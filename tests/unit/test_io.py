"""Atomic writes: a failing writer leaves neither the destination nor a temp file behind."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from audiorec.io import atomic_path, write_parquet


def test_success_moves_the_file_into_place(tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "out.parquet"
    write_parquet(pl.DataFrame({"a": [1, 2]}), dest)
    assert pl.read_parquet(dest)["a"].to_list() == [1, 2]
    assert [p.name for p in dest.parent.iterdir()] == ["out.parquet"]


def test_failure_leaves_nothing(tmp_path: Path) -> None:
    dest = tmp_path / "out.txt"
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-way")
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_a_previous_complete_file(tmp_path: Path) -> None:
    dest = tmp_path / "out.txt"
    dest.write_text("old and complete")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("new but partial")
        raise RuntimeError
    assert dest.read_text() == "old and complete"


def test_temp_file_keeps_the_suffix(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "x.h5") as tmp:
        assert tmp.name.endswith(".h5.tmp")
        assert tmp.parent == tmp_path
        tmp.write_bytes(b"")


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_outputs_keep_the_users_umask(tmp_path, umask, mode):
    """mkstemp's private 0600 must not leak into results a group shares on a cluster."""
    from audiorec.io import write_text

    before = os.umask(umask)
    try:
        write_text("x", tmp_path / "a.txt")
        write_parquet(pl.DataFrame({"a": [1]}), tmp_path / "b.parquet")
    finally:
        os.umask(before)
    for name in ("a.txt", "b.parquet"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode

"""Atomic output writing.

Every output is written to a temporary file in the destination's folder and renamed into
place only once complete, so a killed job never leaves a file that Snakemake (or a
resumed run) would take for a finished one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl


def _umask() -> int:
    """The process umask (reading it means setting it; set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask



@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary sibling of `path`; move it onto `path` only if the block succeeds.

    The temporary name keeps the destination's suffix (libraries such as h5py or polars
    pick formats by it) and is removed if the block raises. The output gets the mode a plain
    `open()` gives under the process umask, not mkstemp's private 0600.
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{dest.name}.", suffix=suffix if suffix is not None else dest.suffix + ".tmp", dir=dest.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.exists():
            # mkstemp creates 0600 files: give the output what a plain open() would (0666 less
            # the umask), so results stay readable to a group on a shared cluster
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_parquet(df: pl.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a polars frame to Parquet atomically."""
    with atomic_path(path) as tmp:
        df.write_parquet(tmp)


def write_csv(df: pl.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write a polars frame to CSV atomically."""
    with atomic_path(path) as tmp:
        df.write_csv(tmp)


def write_text(text: str, path: str | os.PathLike[str]) -> None:
    """Write text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")

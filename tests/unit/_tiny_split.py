"""Hand-made split parts for the model tests (imported by tests/unit/test_models_*.py)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import polars as pl
import pytest
import torch

from audiorec.models.data import SplitData, split_from_frames
from audiorec.models.run import RunPaths

T0 = datetime(2019, 6, 1)


def run_paths(split_dir, run_dir, embeddings=None, **optional) -> RunPaths:
    """RunPaths of one run reading the split parts {train,val,test}.parquet of `split_dir` and
    writing its outputs into `run_dir` (the names the train rule gives them); `optional`: the
    other fields (known, catalogue, extra), as given."""
    return RunPaths(
        train=str(split_dir / "train.parquet"), val=str(split_dir / "val.parquet"), test=str(split_dir / "test.parquet"),
        embeddings=None if embeddings is None else str(embeddings),
        recs_val=str(run_dir / "recs_val.parquet"), recs_test=str(run_dir / "recs_test.parquet"),
        history=str(run_dir / "history.csv"), weights=str(run_dir / "model.pt"), info=str(run_dir / "run.json"),
        **optional,
    )  # fmt: skip


def part(rows: Iterable[tuple]) -> pl.DataFrame:
    """rows: (user, track) or (user, track, minute) or (user, track, minute, plays)."""
    users, tracks, times, plays = [], [], [], []
    for n, row in enumerate(rows):
        users.append(row[0])
        tracks.append(row[1])
        times.append(T0 + timedelta(minutes=row[2] if len(row) > 2 else n))
        plays.append(row[3] if len(row) > 3 else 1)
    return pl.DataFrame(
        {"user_id": users, "track_id": tracks, "timestamp": times, "plays": plays},
        schema={"user_id": pl.String, "track_id": pl.String, "timestamp": pl.Datetime("us"), "plays": pl.Int64},
    )


def split(train: Iterable[tuple], val: Iterable[tuple] = (), test: Iterable[tuple] = ()) -> SplitData:
    return split_from_frames({"train": part(train), "val": part(val), "test": part(test)})


def sequences_split(sequences: dict[str, list[str]], val: dict[str, list[str]], test: dict[str, list[str]] | None = None) -> SplitData:
    """Train rows in the listed order per user (one minute apart); val/test items after them."""
    train_rows = [(u, t, i) for u, seq in sequences.items() for i, t in enumerate(seq)]
    val_rows = [(u, t, 10_000 + i) for u, items in val.items() for i, t in enumerate(items)]
    test_rows = [(u, t, 10_000 + i) for u, items in (test or {}).items() for i, t in enumerate(items)]
    return split(train_rows, val_rows, test_rows)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models on one thread: on a shared CPU, OpenMP's threads spend their time waiting
    for each other on tensors this small (10x slower with two threads under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

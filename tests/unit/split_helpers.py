"""Readers of a split's result shared by the split tests (warm and cold_items protocols)."""

from __future__ import annotations

import polars as pl


def pairs(df: pl.DataFrame) -> set[tuple[str, str]]:
    """The (user, track) pairs of a part."""
    return set(zip(df["user_id"].to_list(), df["track_id"].to_list(), strict=True))


def stat(result, stage: str, name: str) -> dict:
    """The one stats.csv row of `stage`/`name`."""
    row = result.stats.filter((pl.col("stage") == stage) & (pl.col("name") == name))
    assert row.height == 1, (stage, name)
    return row.row(0, named=True)

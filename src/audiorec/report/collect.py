"""Gather the per-user metrics of every run and average them over seeds.

The run layout (ARCHITECTURE §3) names model, backend, seed and split in the path
(`runs/{model}/{backend}/seed{seed}/metrics_{split}.parquet`), so the report needs no
other index of what it was given.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from audiorec.evaluation.metric_names import METRICS

log = logging.getLogger(__name__)

_SEED = re.compile(r"^seed(\d+)$")
_FILE = re.compile(r"^(?:metrics|beyond|artist_metrics)_(\w+)\.parquet$")


@dataclass(frozen=True)
class RunFile:
    model: str
    backend: str
    seed: int
    split: str
    path: Path


def parse_run_file(path: str | os.PathLike[str]) -> RunFile:
    p = Path(path)
    seed = _SEED.match(p.parent.name)
    split = _FILE.match(p.name)
    if len(p.parts) < 4 or not seed or not split:
        raise ValueError(
            f"{p}: not a run metrics file (expected runs/{{model}}/{{backend}}/seed{{n}}/"
            "{metrics,beyond,artist_metrics}_{split}.parquet)"
        )
    return RunFile(p.parent.parent.parent.name, p.parent.parent.name, int(seed.group(1)), split.group(1), p)


def load_per_user(
    paths: list[str | os.PathLike[str]],
    metrics: tuple[str, ...] = METRICS,
    keys: tuple[str, ...] = (),
    rule: str = "evaluate",
) -> pl.DataFrame:
    """Long frame: model, backend, seed, split, [keys], user_id and the metric columns.

    `keys`: extra key columns of the files (e.g. artist_group); `rule` names the rule that
    writes them in error messages."""
    if not paths:
        raise ValueError("the report got no run metrics files; configure at least one model")
    frames = []
    metrics = tuple(metrics)
    for run in map(parse_run_file, paths):
        frame = pl.read_parquet(run.path)
        missing = [c for c in ("user_id", *keys, *metrics) if c not in frame.columns]
        if missing:
            raise ValueError(f"{run.path}: lacks column(s) {missing}; re-run `rule {rule}` for it")
        bad = frame.select(pl.any_horizontal(pl.col(metrics).is_null() | pl.col(metrics).is_nan()).sum()).item()
        if bad:
            raise ValueError(f"{run.path}: {bad} user(s) with a null/NaN metric; re-run `rule {rule}` for it")
        frames.append(
            frame.select(
                pl.lit(run.model).alias("model"),
                pl.lit(run.backend).alias("backend"),
                pl.lit(run.seed, dtype=pl.Int64).alias("seed"),
                pl.lit(run.split).alias("split"),
                *[pl.col(c).cast(pl.String) for c in keys],
                pl.col("user_id").cast(pl.String),
                *[pl.col(m).cast(pl.Float64) for m in metrics],
            )
        )
    return pl.concat(frames)


def seed_average(per_user: pl.DataFrame, metrics: tuple[str, ...] = METRICS) -> pl.DataFrame:
    """One row per model × backend × split × user: metrics averaged over seeds, with n_seeds.

    Every seed of a run, and every run of a split, must have evaluated the same users
    (they all rank the users of the same split part); anything else means stale or mixed
    results, which no average could repair, so it is an error.
    """
    keys = ["model", "backend", "split", "seed"]
    dup = per_user.filter(per_user.select(*keys, "user_id").is_duplicated())
    if len(dup):
        raise ValueError(f"per-user metrics list a user twice in one run, e.g. {dup.head(2).rows()}")
    # Each run's users are distinct, so all runs of a split hold the same users exactly
    # when each holds as many as the split's union.
    counts = per_user.group_by(keys).agg(pl.len().alias("n")).join(
        per_user.group_by("split").agg(pl.col("user_id").n_unique().alias("union")), on="split"
    )
    bad = counts.filter(pl.col("n") != pl.col("union")).sort(keys)
    if len(bad):
        raise ValueError(
            f"runs evaluated different sets of users (model, backend, split, seed, users, users in split): "
            f"{bad.rows()[:5]}; all runs of a split rank the users of the same split part — re-run the stale runs"
        )
    return (
        per_user.group_by("model", "backend", "split", "user_id")
        .agg(*[pl.col(m).mean() for m in metrics], pl.col("seed").n_unique().alias("n_seeds"))
        .sort("model", "backend", "split", "user_id")
    )

"""The report beyond one accuracy number (docs/report.md, "Beyond accuracy" and "User groups"):
per-run catalogue metrics, accuracy per user group and, for cold-item splits, per artist group.

User groups are formed per split part among its evaluated users, from the train split alone
(so every run of a part has the same groups):
- `mainstream`: terciles of the mean train popularity of the user's train tracks
  (popularity as in evaluation/beyond.py): niche, middle, mainstream;
- `activity`: terciles of the number of distinct train tracks: light, medium, heavy.
Terciles by rank (ties broken by user id), so each group holds a third of the users.
Within each group every accuracy metric is summarised and tested exactly as metrics.csv /
significance.csv (paired on the group's users, Holm within group × model × split × metric ×
test × family), for the `baseline` and `floor` families; the baseline backend is the one
the whole-population table uses.
"""

from __future__ import annotations

import logging
import os

import polars as pl

from audiorec.evaluation.beyond import history_popularity, train_popularity
from audiorec.evaluation.metric_names import ARTIST_GROUPS, METRICS, RUN_METRICS
from audiorec.report.aggregate import Catalogue, ReportSettings, compare, summarise
from audiorec.report.collect import load_per_user, parse_run_file, seed_average

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
GROUPINGS = {"mainstream": ("niche", "middle", "mainstream"), "activity": ("light", "medium", "heavy")}
GROUP_FAMILIES = ("baseline", "floor")


def user_profiles(train_path: PathLike) -> pl.DataFrame:
    """(user_id, hist_pop, hist_len) of every train user."""
    train = pl.read_parquet(train_path, columns=["user_id", "track_id"])
    popularity, _ = train_popularity(train)
    return history_popularity(train, popularity)


def _terciles(frame: pl.DataFrame, value: str, labels: tuple[str, str, str]) -> pl.Expr:
    """The tercile label of each row by `value` (rank order, ties by user id)."""
    n = len(frame)
    order = pl.struct(pl.col(value), pl.col("user_id")).rank("ordinal") - 1  # 0..n-1
    return (
        pl.when(order * 3 < n)
        .then(pl.lit(labels[0]))
        .when(order * 3 < 2 * n)
        .then(pl.lit(labels[1]))
        .otherwise(pl.lit(labels[2]))
    )


def assign_groups(users: pl.Series, profiles: pl.DataFrame) -> pl.DataFrame:
    """(user_id, mainstream, activity) of these users. A user without train history (none
    under the workflow's splits) counts as the least popular and lightest."""
    frame = (
        pl.DataFrame({"user_id": users.unique()})
        .join(profiles, on="user_id", how="left")
        .with_columns(pl.col("hist_pop").fill_null(0.0), pl.col("hist_len").fill_null(0))
    )
    return frame.select(
        "user_id",
        _terciles(frame, "hist_pop", GROUPINGS["mainstream"]).alias("mainstream"),
        _terciles(frame, "hist_len", GROUPINGS["activity"]).alias("activity"),
    )


def _tag(frame: pl.DataFrame, grouping: str, group: str) -> pl.DataFrame:
    return frame.select(pl.lit(grouping).alias("grouping"), pl.lit(group).alias("group"), pl.all())


def _grouped(
    averaged: pl.DataFrame,
    overall: pl.DataFrame,
    settings: ReportSettings,
    catalogue: Catalogue,
    grouping: str,
    group: str,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    summary = summarise(averaged, settings, catalogue, METRICS)
    # `overall` picks the baselines: the same backend as the whole-population table.
    significance = compare(averaged, overall, settings, catalogue, METRICS, GROUP_FAMILIES)
    return _tag(summary, grouping, group), _tag(significance, grouping, group)


def group_results(
    averaged: pl.DataFrame, overall: pl.DataFrame, profiles: pl.DataFrame, settings: ReportSettings, catalogue: Catalogue
) -> tuple[list[pl.DataFrame], list[pl.DataFrame]]:
    """Accuracy summaries and tests per user group (mainstream and activity terciles)."""
    summaries, tests = [], []
    for split in sorted(averaged["split"].unique().to_list(), key=lambda s: (s != "test", s)):
        part = averaged.filter(pl.col("split") == split)
        groups = assign_groups(part["user_id"], profiles)
        for grouping, labels in GROUPINGS.items():
            for group in labels:
                users = groups.filter(pl.col(grouping) == group)["user_id"]
                sub = part.filter(pl.col("user_id").is_in(users.implode()))
                if sub.is_empty():
                    continue
                s, t = _grouped(sub, overall, settings, catalogue, grouping, group)
                summaries.append(s)
                tests.append(t)
    return summaries, tests


def artist_results(
    paths: list[PathLike], overall: pl.DataFrame, settings: ReportSettings, catalogue: Catalogue
) -> tuple[list[pl.DataFrame], list[pl.DataFrame]]:
    """Accuracy summaries and tests per target artist group of a cold-item split."""
    if not paths:
        return [], []
    per_user = load_per_user(paths, METRICS, keys=("artist_group",), rule="evaluate_artists")
    summaries, tests = [], []
    for group in ARTIST_GROUPS:
        own = per_user.filter(pl.col("artist_group") == group).drop("artist_group")
        if own.is_empty():
            continue
        s, t = _grouped(seed_average(own), overall, settings, catalogue, "artist", group)
        summaries.append(s)
        tests.append(t)
    return summaries, tests


def run_level(paths: list[PathLike], catalogue: Catalogue) -> pl.DataFrame:
    """beyond.csv: coverage and Gini per model × backend × split, mean over seeds (with their range)."""
    rows = []
    for path in paths:
        run = parse_run_file(str(path).replace("beyond_run_", "beyond_").replace(".csv", ".parquet"))
        values = pl.read_csv(path).row(0, named=True)
        rows.append({"model": run.model, "backend": run.backend, "seed": run.seed, "split": run.split, **values})
    frame = pl.DataFrame(rows, infer_schema_length=None)
    out = frame.group_by("model", "backend", "split").agg(
        *[pl.col(m).mean() for m in RUN_METRICS],
        *[pl.col(m).min().alias(f"{m}_min") for m in RUN_METRICS],
        *[pl.col(m).max().alias(f"{m}_max") for m in RUN_METRICS],
        pl.col("k").first(),
        pl.col("n_candidates").max(),
        pl.col("seed").n_unique().alias("n_seeds"),
    )
    return catalogue.sort(out, pl.col("split").replace_strict(["test", "val"], [0, 1], default=2))


def concat_or_empty(frames: list[pl.DataFrame], like: pl.DataFrame) -> pl.DataFrame:
    """The frames stacked, or an empty frame with `like`'s columns plus grouping, group."""
    if frames:
        return pl.concat(frames)
    return _tag(like.clear(), "", "").clear()

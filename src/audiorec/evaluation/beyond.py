"""Beyond-accuracy metrics of a run's recommendation lists (docs/report.md, "Beyond accuracy").

Computed from files the workflow already writes (a run's `recs_{part}.parquet`, the split's
`train.parquet` and `catalogue.parquet`, the dataset's genre labels), so adding them re-runs
no training. Plain numpy/polars, no torch: cheap at paper scale (benchmarks/beyond_metrics.py).

Popularity of a track i: pop(i) = n(i) / U, n(i) = distinct train users who played i, U =
distinct train users. A track nobody played in train (a cold item) has pop 0 for ARP; for
novelty its count is floored at one listener, so its self-information is log2(U), the
largest a track with any train play can have, never infinite.

Per user, over the top-K list (rank <= K; a shorter list is averaged over what it has):
- `novelty`: mean of -log2(max(n(i), 1) / U);
- `arp`: mean pop(i) (average recommendation popularity);
- `pop_lift`: (arp - h) / h, h = mean pop of the user's train tracks (> 0 for a train user);
- `diversity`: intra-list diversity over genre labels (evaluation/diversity.py).
A user of the part without any recommendation, or without train history (pop_lift only),
scores 0 (counted in the log). Per run: `coverage` (distinct recommended tracks / candidate
tracks) and `gini` of how often each candidate track is recommended (0 = every track
equally often, towards 1 = a few tracks take every slot).
"""

from __future__ import annotations

import logging

import numpy as np
import polars as pl

from audiorec.evaluation.diversity import genre_diversity
from audiorec.evaluation.metric_names import BEYOND_METRICS

__all__ = ["BEYOND_METRICS", "BeyondError", "catalogue_metrics", "gini", "per_user_beyond", "train_popularity"]

log = logging.getLogger(__name__)


class BeyondError(ValueError):
    """Input the beyond-accuracy metrics cannot be computed from (the message names it)."""


def train_popularity(train: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """(track_id, n_users, popularity) of every train track, and U, the number of train users."""
    pairs = train.select(pl.col("user_id").cast(pl.String), pl.col("track_id").cast(pl.String)).unique()
    n_users = pairs["user_id"].n_unique()
    if n_users == 0:
        raise BeyondError("the train split is empty: popularity (novelty, ARP) needs train listens")
    counts = pairs.group_by("track_id").agg(pl.len().cast(pl.Int64).alias("n_users"))
    return counts.with_columns((pl.col("n_users") / n_users).alias("popularity")), n_users


def history_popularity(train: pl.DataFrame, popularity: pl.DataFrame) -> pl.DataFrame:
    """(user_id, hist_pop, hist_len): mean pop of each train user's distinct tracks, and their number."""
    pairs = train.select(pl.col("user_id").cast(pl.String), pl.col("track_id").cast(pl.String)).unique().sort("user_id", "track_id")
    pairs = pairs.join(popularity.select("track_id", "popularity"), on="track_id", how="left", maintain_order="left")
    return _ordered_means(pairs, "user_id", {"popularity": "hist_pop"}, "hist_len")


def _ordered_means(frame: pl.DataFrame, key: str, columns: dict[str, str], count: str) -> pl.DataFrame:
    """Per-`key` means of `columns` (renamed), summed in the frame's row order by numpy: polars'
    parallel group_by sums in an order that depends on the thread count, so a cluster job and a
    local run would differ in the last bits. `frame` must be sorted by `key`."""
    keys = frame[key].to_numpy()
    if len(keys) == 0:
        schema = {key: pl.String, **{name: pl.Float64 for name in columns.values()}, count: pl.Int64}
        return pl.DataFrame(schema=schema)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    lengths = np.diff(np.r_[starts, len(keys)])
    out = {key: keys[starts]}
    for column, name in columns.items():
        values = frame[column].cast(pl.Float64).fill_null(np.nan).to_numpy()
        out[name] = np.add.reduceat(values, starts) / lengths
    out[count] = lengths.astype(np.int64)
    return pl.DataFrame(out).with_columns(pl.col(key).cast(pl.String))


def _top_k(recs: pl.DataFrame, users: pl.Series, k: int) -> pl.DataFrame:
    """The recs of the part's users within the cut-off, ordered by user and rank."""
    for col in ("user_id", "track_id", "rank"):
        if col not in recs.columns:
            raise BeyondError(f"recommendations lack column `{col}`; they have {recs.columns}")
    return (
        recs.select(pl.col("user_id").cast(pl.String), pl.col("track_id").cast(pl.String), pl.col("rank").cast(pl.Int64))
        .filter((pl.col("rank") <= k) & pl.col("user_id").is_in(users.implode()))
        .sort("user_id", "rank")
    )


def per_user_beyond(
    recs: pl.DataFrame,
    truth: pl.DataFrame,
    train: pl.DataFrame,
    k: int,
    genres: pl.DataFrame | None = None,
    *,
    source: str = "recs",
) -> pl.DataFrame:
    """One row per user of `truth` (the split part): user_id, novelty, arp, pop_lift,
    [diversity, n_labelled] (with `genres`: track_id, genres as a list of strings), n_recs."""
    if k < 1:
        raise BeyondError(f"k must be >= 1, got {k}")
    users = truth.select(pl.col("user_id").cast(pl.String)).unique().sort("user_id")["user_id"]
    top = _top_k(recs, users, k)
    popularity, n_train_users = train_popularity(train)
    history = history_popularity(train, popularity)
    info = top.join(popularity, on="track_id", how="left").with_columns(
        pl.col("popularity").fill_null(0.0),
        (np.log2(n_train_users) - pl.col("n_users").fill_null(1).clip(lower_bound=1).log(2)).alias("self_info"),
    )
    per_user = _ordered_means(info.sort("user_id", "rank"), "user_id", {"self_info": "novelty", "popularity": "arp"}, "n_recs")
    frame = (
        pl.DataFrame({"user_id": users})
        .join(per_user, on="user_id", how="left")
        .join(history, on="user_id", how="left")
        .with_columns(
            pl.col("novelty").fill_null(0.0),
            pl.col("arp").fill_null(0.0),
            pl.col("n_recs").fill_null(0),
        )
    )
    no_history = int(frame["hist_pop"].is_null().sum())
    frame = frame.with_columns(
        pl.when(pl.col("hist_pop").is_null() | (pl.col("n_recs") == 0))
        .then(0.0)
        .otherwise((pl.col("arp") - pl.col("hist_pop")) / pl.col("hist_pop"))
        .alias("pop_lift")
    )
    n_without = int((frame["n_recs"] == 0).sum())
    if n_without or no_history:
        log.info(
            "%s: %d of %d users without recommendations, %d without train history: their beyond metrics are 0",
            source, n_without, len(frame), no_history,
        )
    columns = ["user_id", "novelty", "arp", "pop_lift"]
    if genres is not None:
        div = genre_diversity(top, genres)
        frame = frame.join(div, on="user_id", how="left").with_columns(
            pl.col("diversity").fill_null(0.0), pl.col("n_labelled").fill_null(0)
        )
        few = int((frame["n_labelled"] < 2).sum())
        if few:
            log.info("%s: %d users have fewer than 2 genre-labelled tracks in their list: diversity 0", source, few)
        columns += ["diversity", "n_labelled"]
    return frame.select(*columns, "n_recs").sort("user_id")


def gini(counts: np.ndarray) -> float:
    """Gini index of non-negative counts (0: all equal; (n-1)/n: one item has everything).
    All zeros (nothing recommended) gives 0."""
    x = np.sort(np.asarray(counts, dtype=np.float64))
    n, total = x.size, x.sum()
    if n == 0 or total == 0:
        return 0.0
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * x).sum() / (n * total))


def catalogue_metrics(recs: pl.DataFrame, truth: pl.DataFrame, catalogue: pl.DataFrame, k: int) -> dict[str, float]:
    """Per-run coverage@K and Gini of the part's top-K lists over the candidate tracks.

    `catalogue`: the split's catalogue.parquet (track_id, candidate); the candidates are the
    tracks a list may hold, so they are the denominator. A recommended track outside them
    (which the ranking never produces) is still counted, in numerator and denominator."""
    if "candidate" not in catalogue.columns:
        raise BeyondError(f"the catalogue lacks column `candidate`; it has {catalogue.columns}")
    users = truth.select(pl.col("user_id").cast(pl.String)).unique()["user_id"]
    top = _top_k(recs, users, k)
    candidates = catalogue.filter(pl.col("candidate")).select(pl.col("track_id").cast(pl.String))
    counts = top.group_by("track_id").agg(pl.len().alias("n"))
    every = candidates.join(counts, on="track_id", how="full", coalesce=True).with_columns(pl.col("n").fill_null(0))
    n_catalogue = len(every)
    n_recommended = int((every["n"] > 0).sum())
    return {
        "coverage": n_recommended / n_catalogue if n_catalogue else 0.0,
        "gini": gini(every["n"].to_numpy()),
        "n_recommended": n_recommended,
        "n_candidates": n_catalogue,
        "n_users": int(top["user_id"].n_unique()),
    }

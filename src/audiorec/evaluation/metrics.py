"""Top-K ranking metrics, vectorised over users.

Definitions (ARCHITECTURE §6): relevance is binary; HitRate@K = 1 if any hit; Recall@K =
hits / |relevant|; Precision@K = hits / K; NDCG@K = DCG / IDCG with gain 1/log2(rank+1)
and the ideal DCG over min(|relevant|, K) items; MRR@K = 1 / rank of the first hit (0 if none).
A user with no relevant items scores 0 everywhere (such users are normally not evaluated).

`ranking_metrics` works on a hit matrix and is shared with training (early stopping on
validation); `per_user_metrics` turns a run's recommendation frame and a split part into
the per-user table the report aggregates. Both agree with ranx (tests/unit/test_metrics.py).
"""

from __future__ import annotations

import logging

import polars as pl
import torch

from audiorec.evaluation.metric_names import METRICS

__all__ = ["METRICS", "RecsError", "per_user_metrics", "ranking_metrics"]

log = logging.getLogger(__name__)


def ranking_metrics(hits: torch.Tensor, n_relevant: torch.Tensor, k: int) -> dict[str, torch.Tensor]:
    """Per-user metrics from a hit matrix.

    hits:       [U, K'] bool, hits[u, r] is True if the item at rank r+1 is relevant to u
                (K' < k: shorter lists, e.g. fewer candidates than k, count as misses;
                columns beyond k are ignored).
    n_relevant: [U] number of distinct relevant items of each user.

    Computed in float64 so that sums of many small gains do not drift between devices.
    """
    if k < 1:
        raise ValueError(f"ranking_metrics: k must be >= 1, got {k}")
    if hits.dim() != 2 or n_relevant.dim() != 1 or hits.shape[0] != n_relevant.shape[0]:
        raise ValueError(
            f"ranking_metrics: expected hits [U, K] and n_relevant [U], got {tuple(hits.shape)} and "
            f"{tuple(n_relevant.shape)}"
        )
    device = hits.device
    hits = hits[:, :k].to(torch.float64)
    n_rel = n_relevant.to(device=device, dtype=torch.float64)
    full_discounts = 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64, device=device))
    n_hits = hits.sum(dim=1)
    dcg = hits @ full_discounts[: hits.shape[1]]
    ideal_cumsum = torch.cat([torch.zeros(1, dtype=torch.float64, device=device), full_discounts.cumsum(0)])
    idcg = ideal_cumsum[torch.clamp(n_rel, max=k).to(torch.long)]
    any_hit = n_hits > 0
    # argmax returns the first maximal index, i.e. the first hit.
    first_rank = hits.argmax(dim=1).to(torch.float64) + 1.0
    return {
        "hitrate": any_hit.to(torch.float64),
        "recall": torch.where(n_rel > 0, n_hits / n_rel.clamp(min=1), 0.0),
        "ndcg": torch.where(idcg > 0, dcg / idcg.clamp(min=1e-12), 0.0),
        "mrr": torch.where(any_hit, 1.0 / first_rank, 0.0),
        "precision": n_hits / k,
    }


class RecsError(ValueError):
    """A recommendation or split frame that cannot be evaluated as it is."""


def _require(frame: pl.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RecsError(f"{what} lacks column(s) {missing}; it has {frame.columns}")


def per_user_metrics(recs: pl.DataFrame, truth: pl.DataFrame, k: int, *, source: str = "recs") -> pl.DataFrame:
    """One row per user of `truth`: user_id, hitrate, recall, ndcg, mrr, precision at k.

    recs:  user_id, track_id, rank (1-based; authoritative, `score` is never read, so ties
           in score cannot reorder a list), [score]. Rows ranked beyond k are ignored.
    truth: user_id, track_id, ... (a split part); relevant = the user's distinct tracks.

    Every user of `truth` is evaluated; a user without recommendations scores 0. Recs of
    users absent from `truth` are ignored and counted in the log. A user with a repeated
    rank or a repeated track is an error, since either means the recommender is broken and
    any number computed from it would be wrong. Extra columns: n_relevant (distinct
    relevant tracks) and n_recs (recommendations within the cut-off).
    `source` names the recs file in error messages.
    """
    if k < 1:
        raise RecsError(f"k must be >= 1, got {k}")
    _require(recs, ("user_id", "track_id", "rank"), source)
    _require(truth, ("user_id", "track_id"), "the split part")
    if not recs.schema["rank"].is_integer():
        raise RecsError(f"{source}: column `rank` must be integer (1-based), got {recs.schema['rank']}")
    recs = recs.select(
        pl.col("user_id").cast(pl.String), pl.col("track_id").cast(pl.String), pl.col("rank").cast(pl.Int64)
    )
    truth = truth.select(pl.col("user_id").cast(pl.String), pl.col("track_id").cast(pl.String)).unique()
    for col in ("user_id", "track_id", "rank"):
        if recs[col].null_count():
            raise RecsError(f"{source}: {recs[col].null_count()} row(s) with a null `{col}`")
    if truth["user_id"].null_count() or truth["track_id"].null_count():
        raise RecsError("the split part has rows with a null user_id or track_id")
    if len(recs) and recs["rank"].min() < 1:
        raise RecsError(f"{source}: ranks are 1-based, found rank {recs['rank'].min()}")
    for key, what in ((["user_id", "rank"], "rank"), (["user_id", "track_id"], "track")):
        dup = recs.filter(recs.select(key).is_duplicated())
        if len(dup):
            example = dup.sort(key).head(3).rows()
            raise RecsError(
                f"{source}: {dup['user_id'].n_unique()} user(s) with a repeated {what} "
                f"({len(dup)} rows, e.g. {example}); a top-K list holds each rank and each track once"
            )

    users = truth.group_by("user_id").agg(pl.len().alias("n_relevant")).sort("user_id")
    users = users.with_row_index("u")
    known = recs.join(users.select("user_id", "u"), on="user_id", how="inner")
    n_foreign_rows = len(recs) - len(known)
    if n_foreign_rows:
        n_foreign_users = recs.join(users, on="user_id", how="anti")["user_id"].n_unique()
        log.warning(
            "%s: ignored %d rows of %d user(s) that have no tracks in the split part",
            source,
            n_foreign_rows,
            n_foreign_users,
        )
    beyond = int((known["rank"] > k).sum())
    if beyond:
        log.info("%s: ignored %d rows ranked beyond k=%d", source, beyond, k)
    known = known.filter(pl.col("rank") <= k)
    known = known.join(truth.with_columns(pl.lit(True).alias("hit")), on=["user_id", "track_id"], how="left")

    n_users = len(users)
    u = torch.from_numpy(known["u"].cast(pl.Int64).to_numpy(writable=True))
    r = torch.from_numpy(known["rank"].to_numpy(writable=True)) - 1
    hit = torch.from_numpy(known["hit"].fill_null(False).to_numpy(writable=True))
    hits = torch.zeros((n_users, k), dtype=torch.bool)
    hits[u[hit], r[hit]] = True
    n_recs = torch.bincount(u, minlength=n_users)
    n_relevant = torch.from_numpy(users["n_relevant"].cast(pl.Int64).to_numpy(writable=True))
    values = ranking_metrics(hits, n_relevant, k)

    n_without = int((n_recs == 0).sum())
    short = int(((n_recs > 0) & (n_recs < k)).sum())
    if n_without or short:
        log.info(
            "%s: %d of %d users have no recommendations (scored 0), %d have fewer than k=%d",
            source,
            n_without,
            n_users,
            short,
            k,
        )
    return pl.DataFrame(
        {
            "user_id": users["user_id"],
            **{name: values[name].numpy() for name in METRICS},
            "n_relevant": users["n_relevant"].cast(pl.Int64),
            "n_recs": n_recs.numpy(),
        }
    )

"""Top-K ranking over the whole catalogue, shared by every recommender.

Every model reduces to factors: a user vector per evaluated user and an item matrix (plus
an optional item bias), with scores = user @ items.T (+ bias), or the cosine when the
model asks for it. Ranking is done here once, in chunks of users so that memory stays
bounded at paper scale (17k users x 56k tracks would be 3.8 GB of float32 scores at once).

Guarantees the tests hold this module to:
- every item is scored; the user's listened (train) items never appear;
- ties are broken by the lower item index (track ids are sorted, so by track id), which
  makes the lists independent of chunk size, thread count and torch.topk's internals;
- users with fewer than K candidates get shorter lists, never filler;
- with `candidates` (a cold-item split's pool), only those items are ranked; indices
  stay catalogue indices, and ties still go to the lower (catalogue) index;
- a non-finite score is an error, not a silently wrong ranking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F

UserFactors = Callable[[torch.Tensor], torch.Tensor]
"""Maps a 1-D tensor of user indices to their [U, D] vectors (a model's forward pass for BERT4Rec)."""

# Bytes per scored (user, item) cell while a chunk is ranked: the float32 score, plus, for
# rows tied across the cut, a copy, three boolean masks and an int32 count (_top_k_chunk).
_BYTES_PER_CELL = 4 + 4 + 3 + 4
DEFAULT_CHUNK_BYTES = 256 * 2**20


@dataclass(frozen=True)
class Seen:
    """Items to exclude per user, as CSR over user indices: items of user u are
    `indices[indptr[u]:indptr[u+1]]`."""

    indptr: np.ndarray
    indices: np.ndarray

    def rows(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row within `users`, item) of every excluded cell of these users, vectorised."""
        starts = self.indptr[users]
        counts = self.indptr[users + 1] - starts
        rows = np.repeat(np.arange(len(users)), counts)
        # position of each cell inside its user's segment, then offset by the segment start
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        return rows, self.indices[np.repeat(starts, counts) + offsets]


@dataclass(frozen=True)
class TopK:
    """Ranked lists: items[u, r] is the item at rank r+1 of users[u] (-1 past the list's end)."""

    users: np.ndarray
    items: np.ndarray
    scores: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return (self.items >= 0).sum(axis=1)


def chunk_size(n_items: int, max_chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> int:
    """Users ranked at once so that one chunk's working memory stays under the budget."""
    return max(1, int(max_chunk_bytes // (_BYTES_PER_CELL * max(1, n_items))))


def top_k(
    user_factors: UserFactors | torch.Tensor,
    item_factors: torch.Tensor,
    users: np.ndarray | Sequence[int],
    seen: Seen,
    k: int,
    item_bias: torch.Tensor | None = None,
    cosine: bool = False,
    max_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    users_per_chunk: int | None = None,
    candidates: np.ndarray | Sequence[int] | None = None,
) -> TopK:
    """Rank every item for each of `users`; drop their seen items; keep the best `k`.

    user_factors: either a [n_users, D] matrix indexed by user index, or a callable giving
    the vectors of a chunk of user indices (models whose user vector is a forward pass).
    candidates: sorted item indices that may be recommended (None: every item).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    users = np.asarray(users, dtype=np.int64)
    items = item_factors.detach()
    device = items.device
    if not torch.isfinite(items).all():
        raise ValueError("item factors contain non-finite values; the model diverged or its input has NaN")
    items = items.float()
    if cosine:
        items = F.normalize(items, dim=1)
    bias = None if item_bias is None else item_bias.detach().to(device=device, dtype=torch.float32)
    pool, local = _candidate_pool(candidates, items.shape[0])
    if pool is not None:
        index = torch.as_tensor(pool, device=device)
        items = items[index]
        bias = None if bias is None else bias[index]
    n_items = items.shape[0]
    kk = min(k, n_items)
    step = users_per_chunk or chunk_size(n_items, max_chunk_bytes)
    out_items = np.full((len(users), kk), -1, dtype=np.int64)
    out_scores = np.full((len(users), kk), -np.inf, dtype=np.float32)
    for start in range(0, len(users), step):
        chunk = users[start : start + step]
        if callable(user_factors):
            u = user_factors(torch.as_tensor(chunk, device=device))
        else:
            u = user_factors[torch.as_tensor(chunk, device=user_factors.device)]
        u = u.detach().to(device=device, dtype=torch.float32)
        if not torch.isfinite(u).all():
            raise ValueError("user factors contain non-finite values; the model diverged or its input has NaN")
        if cosine:
            u = F.normalize(u, dim=1)
        scores = u @ items.T
        if bias is not None:
            scores += bias
        rows, cols = seen.rows(chunk)
        if local is not None:  # seen items outside the pool need no mask; the rest move to pool indices
            inside = local[cols] >= 0
            rows, cols = rows[inside], local[cols[inside]]
        scores[torch.as_tensor(rows, device=device), torch.as_tensor(cols, device=device)] = -torch.inf
        idx, val = _top_k_chunk(scores, kk)
        out_items[start : start + len(chunk)] = idx.cpu().numpy()
        out_scores[start : start + len(chunk)] = val.cpu().numpy()
    out_items[~np.isfinite(out_scores)] = -1
    if pool is not None:
        out_items = np.where(out_items >= 0, pool[np.maximum(out_items, 0)], -1)
    return TopK(users=users, items=out_items, scores=out_scores)


def _candidate_pool(
    candidates: np.ndarray | Sequence[int] | None, n_items: int
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(pool, local): the candidate item indices, and each catalogue item's index in the pool (-1 outside)."""
    if candidates is None:
        return None, None
    pool = np.asarray(candidates, dtype=np.int64)
    if pool.ndim != 1 or len(pool) == 0 or (np.diff(pool) <= 0).any() or pool[0] < 0 or pool[-1] >= n_items:
        raise ValueError(f"candidates must be sorted, distinct item indices in [0, {n_items}), at least one")
    local = np.full(n_items, -1, dtype=np.int64)
    local[pool] = np.arange(len(pool))
    return pool, local


def _top_k_chunk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k per row with ties broken by the lower column index.

    torch.topk promises the k largest values but not which of several equal ones it keeps,
    nor their order. Take the k+1 largest: where the k-th is strictly above the (k+1)-th the
    chosen set is unambiguous and only needs ordering by (score desc, index asc). Rows tied
    across the cut (rare for learned scores; common for popularity, and for rows with fewer
    than k candidates, whose seen items all score -inf) are resolved on the full row: all
    items strictly above the k-th value, then the lowest-indexed items equal to it.
    """
    if torch.isnan(scores).any():
        raise ValueError("scores contain NaN; the model diverged or its input has NaN")
    n_rows, n_cols = scores.shape
    if k < n_cols:
        val, idx = torch.topk(scores, k + 1, dim=1, sorted=True)
        tied = val[:, k - 1] == val[:, k]
        val, idx = val[:, :k], idx[:, :k]
    else:
        val, idx = torch.topk(scores, k, dim=1, sorted=True)
        tied = torch.zeros(n_rows, dtype=torch.bool, device=scores.device)
    if tied.any():
        rows = tied.nonzero()[:, 0]
        sub = scores[rows]
        kth = val[rows, k - 1 :]
        above = sub > kth
        at = sub == kth
        need = k - above.sum(dim=1, keepdim=True, dtype=torch.int32)
        take = above | (at & (at.cumsum(dim=1, dtype=torch.int32) <= need))
        idx[rows] = take.nonzero()[:, 1].view(len(rows), k)  # row-major: ascending index per row
        val[rows] = sub.gather(1, idx[rows])
    # order every row by (score desc, index asc): stable sort by index, then by score
    by_index = torch.sort(idx, dim=1, stable=True)
    idx, val = by_index.values, val.gather(1, by_index.indices)
    by_score = torch.sort(val, dim=1, descending=True, stable=True).indices
    return idx.gather(1, by_score), val.gather(1, by_score)


def recommendations_frame(top: TopK, user_ids: Sequence[str], track_ids: Sequence[str]) -> pl.DataFrame:
    """The `recs_{part}.parquet` contract: user_id, track_id, rank (1-based), score."""
    keep = top.items >= 0
    rows, ranks = np.nonzero(keep)
    user_arr = np.asarray(user_ids, dtype=object)
    track_arr = np.asarray(track_ids, dtype=object)
    return pl.DataFrame(
        {
            "user_id": pl.Series(user_arr[top.users[rows]].tolist(), dtype=pl.String),
            "track_id": pl.Series(track_arr[top.items[rows, ranks]].tolist(), dtype=pl.String),
            "rank": pl.Series((ranks + 1).astype(np.int32)),
            "score": pl.Series(top.scores[rows, ranks].astype(np.float32)),
        }
    )


def hit_matrix(top: TopK, relevant: Seen) -> torch.Tensor:
    """hits[u, r]: is the item at rank r+1 of top.users[u] among that user's relevant items?"""
    n_items_bound = int(max(top.items.max(initial=0), relevant.indices.max(initial=0))) + 1
    rows, cols = relevant.rows(top.users)
    relevant_keys = np.unique(rows.astype(np.int64) * n_items_bound + cols)
    keys = np.arange(len(top.users), dtype=np.int64)[:, None] * n_items_bound + top.items
    hits = np.isin(keys, relevant_keys) & (top.items >= 0)
    return torch.from_numpy(hits)

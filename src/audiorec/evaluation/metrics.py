"""Top-K ranking metrics, vectorised over users.

Definitions (ARCHITECTURE §6): relevance is binary; HitRate@K = 1 if any hit; Recall@K =
hits / |relevant|; Precision@K = hits / K; NDCG@K = DCG / IDCG with gain 1/log2(rank+1)
and the ideal DCG over min(|relevant|, K) items; MRR@K = 1 / rank of the first hit (0 if none).
A user with no relevant items scores 0 everywhere (and should normally not be evaluated).
"""

from __future__ import annotations

import torch

METRICS = ("hitrate", "recall", "ndcg", "mrr", "precision")


def ranking_metrics(hits: torch.Tensor, n_relevant: torch.Tensor, k: int) -> dict[str, torch.Tensor]:
    """Per-user metrics from a hit matrix.

    hits:       [U, K'] bool, hits[u, r] is True if the item at rank r+1 is relevant to u
                (K' <= k: shorter lists, e.g. fewer candidates than k, count as misses).
    n_relevant: [U] number of distinct relevant items of each user.
    """
    hits = hits[:, :k].to(torch.float64)
    n_rel = n_relevant.to(torch.float64)
    ranks = torch.arange(1, hits.shape[1] + 1, dtype=torch.float64, device=hits.device)
    discounts = 1.0 / torch.log2(ranks + 1.0)
    n_hits = hits.sum(dim=1)
    dcg = (hits * discounts).sum(dim=1)
    ideal_n = torch.clamp(n_rel, max=k).to(torch.long)
    full_discounts = 1.0 / torch.log2(torch.arange(1, k + 1, dtype=torch.float64, device=hits.device) + 1.0)
    ideal_cumsum = torch.cat([torch.zeros(1, dtype=torch.float64, device=hits.device), full_discounts.cumsum(0)])
    idcg = ideal_cumsum[ideal_n]
    first_hit = torch.where(hits.any(dim=1), hits.argmax(dim=1).to(torch.float64) + 1.0, torch.inf)
    safe = n_rel > 0
    return {
        "hitrate": (n_hits > 0).to(torch.float64),
        "recall": torch.where(safe, n_hits / n_rel.clamp(min=1), 0.0),
        "ndcg": torch.where(idcg > 0, dcg / idcg.clamp(min=1e-12), 0.0),
        "mrr": 1.0 / first_hit,
        "precision": n_hits / k,
    }

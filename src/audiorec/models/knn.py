"""KNN: a user is the mean of their train tracks' vectors; tracks are ranked by cosine.

No training: it measures how much of a user's taste the raw content vectors carry. The
mean is unweighted (one row per listened track, as the paper), and the cosine makes the
scale of a backend's vectors irrelevant, though not the relative scale of its dimensions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy import sparse

from .base import Factors, Recommender
from .data import SplitData

if TYPE_CHECKING:
    from .registry import RunContext


def user_means(data: SplitData, item_vectors: np.ndarray) -> np.ndarray:
    """Mean vector of each user's train items, in float32.

    A sparse [users x items] product, so that the [train rows x D] gathered vectors are
    never materialised (4 GB at paper scale with 200 dims). A user with no input item (every
    train track without a vector, `SplitData.for_vectors`) gets a zero vector, never NaN; such
    users get no list."""
    counts = np.diff(data.train.indptr)
    ones = np.ones(len(data.train.indices), dtype=np.float32)
    membership = sparse.csr_matrix((ones, data.train.indices, data.train.indptr), shape=(data.n_users, data.n_items))
    sums = membership @ np.asarray(item_vectors, dtype=np.float32)
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)


class KNN(Recommender):
    def __init__(self, data: SplitData, item_vectors: np.ndarray) -> None:
        self.items = torch.from_numpy(np.ascontiguousarray(item_vectors, dtype=np.float32))
        self.users = torch.from_numpy(user_means(data, item_vectors))

    def factors(self) -> Factors:
        return Factors(users=self.users, items=self.items, cosine=True)

    def saved_state(self) -> dict[str, torch.Tensor]:
        return {"user_vectors": self.users.clone()}


def build(context: RunContext) -> KNN:
    """The registry's entry point (knn.yaml declares the type)."""
    if context.vectors is None:
        raise ValueError("knn needs item vectors (a backend, or `random`)")
    return KNN(context.data, context.vectors.vectors)

"""Popularity: every user gets the most-listened train tracks they have not heard yet.

The sanity floor of the report: a model has learned something about users only if it beats
this. Written as factors (a constant user vector against a one-dimensional item score) so
it is ranked by exactly the same code as every other model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from .base import Factors, Recommender
from .data import SplitData

if TYPE_CHECKING:
    from .registry import RunContext


class Popularity(Recommender):
    """count="users": distinct train listeners per track; count="plays": summed plays."""

    def __init__(self, data: SplitData, count: str = "users") -> None:
        if count not in ("users", "plays"):
            raise ValueError(f"pop: count must be 'users' or 'plays', got {count!r}")
        weights = data.train_plays.astype(np.float64) if count == "plays" else None
        popularity = np.bincount(data.train.indices, weights=weights, minlength=data.n_items)
        self.popularity = torch.from_numpy(popularity.astype(np.float32))
        self.n_users = data.n_users

    def factors(self) -> Factors:
        return Factors(users=torch.ones(self.n_users, 1), items=self.popularity[:, None])

    def saved_state(self) -> dict[str, torch.Tensor]:
        return {"popularity": self.popularity.clone()}


def build(context: RunContext) -> Popularity:
    """The registry's entry point (pop.yaml declares the type)."""
    return Popularity(context.data, count=context.spec.get("count", "users"))

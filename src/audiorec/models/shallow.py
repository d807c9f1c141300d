"""Shallow Net (paper §2.2): content item vectors and learned user vectors, compared by cosine.

user table -> Linear(D, D) + ReLU ┐
                                   ├─ cosine -> max-margin hinge against negative *users*
item table -> Linear(D, D) + ReLU ┘

For every positive (user, item) train pair, `n_negatives` users who did not play the item
are drawn, and the loss asks the item to be closer (by `margin`) to its listener than to
each of them. The item table holds the pretrained vectors and is really frozen (the
published code's freeze flags were inverted, so its items were trained and its users were
not); the user table starts at the mean of each user's train item vectors and is trained.
`tower: shared` uses one Linear+ReLU for both sides, like the published code (both tables
live in the same space at initialisation); `separate` gives each side its own.

Two settings restore errata of the published code (configs/errata.yaml measures them):
`erratum_inverted_freeze` trains the item table and freezes the user table (its inverted
flags), `erratum_any_negatives` draws negatives uniformly from all users, listeners of the
item included (its `np.random.randint(0, n_users)`).

Batches are index arrays: each step maps its users through the tower once per distinct user
and reuses the rows for the positive and negative slots.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import Factors, NeuralRecommender
from .data import SplitData

if TYPE_CHECKING:
    from .registry import RunContext
from .items import ItemInput, ItemSettings
from .knn import user_means

log = logging.getLogger(__name__)

# Redraws of negatives that hit a listener of the item before that slot is given up.
MAX_NEGATIVE_REDRAWS = 50


def hinge_loss(pos: torch.Tensor, neg: torch.Tensor, margin: float, valid: torch.Tensor | None = None) -> torch.Tensor:
    """mean over (pair, negative) of max(0, margin - s(u+, i) + s(u-, i)); pos [B], neg [B, M]."""
    losses = torch.clamp(margin - pos[:, None] + neg, min=0.0)
    if valid is None:
        return losses.mean()
    valid_f = valid.to(losses.dtype)
    return (losses * valid_f).sum() / valid_f.sum().clamp(min=1.0)


class PairDot(torch.autograd.Function):
    """s[p] = left[rows[p]] . right[cols[p]] for many (row, col) pairs.

    Two exact ways, picked by cost: when the full [rows x cols] product is cheap (few
    distinct users, as at the default size), one dense matmul and a gather; otherwise
    (paper scale: ~17k distinct users per 10k-pair batch) chunked row dots forward and two
    sparse x dense products backward, never materialising the [pairs, D] gathered operands.
    Either is several times faster than gather-multiply-sum autograd on CPU and keeps
    memory flat for wide vectors (Jukebox: 4800 dims).
    """

    CHUNK = 1 << 15
    # A gathered row dot costs about as much as this many multiply-adds of a dense matmul
    # (measured on CPU, 200-dim vectors; the choice affects speed only, never the result).
    GATHER_COST = 128

    @staticmethod
    def dense(n_left: int, n_right: int, n_pairs: int) -> bool:
        return n_left * n_right <= PairDot.GATHER_COST * n_pairs

    @staticmethod
    def forward(ctx, left: torch.Tensor, right: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(left, right, rows, cols)
        if PairDot.dense(left.shape[0], right.shape[0], len(rows)):
            return (left @ right.T)[rows, cols]
        out = torch.empty(len(rows), dtype=left.dtype, device=left.device)
        for a in range(0, len(rows), PairDot.CHUNK):
            b = a + PairDot.CHUNK
            out[a:b] = torch.bmm(left[rows[a:b]].unsqueeze(1), right[cols[a:b]].unsqueeze(2)).view(-1)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None]:
        left, right, rows, cols = ctx.saved_tensors
        pairs = torch.sparse_coo_tensor(
            torch.stack([rows, cols]), grad, (left.shape[0], right.shape[0]), check_invariants=False
        ).coalesce()
        if PairDot.dense(left.shape[0], right.shape[0], len(rows)):
            g = pairs.to_dense()
            grad_left = g @ right if ctx.needs_input_grad[0] else None
            grad_right = g.T @ left if ctx.needs_input_grad[1] else None
        else:
            grad_left = torch.sparse.mm(pairs, right) if ctx.needs_input_grad[0] else None
            grad_right = torch.sparse.mm(pairs.t().coalesce(), left) if ctx.needs_input_grad[1] else None
        return grad_left, grad_right, None, None


def pair_dot(left: torch.Tensor, right: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    return PairDot.apply(left, right, rows, cols)


class NegativeUserSampler:
    """Uniform users who did not play a given item, by vectorised rejection sampling
    against a packed bitmap of the train pairs (120 MB at paper scale, O(1) per lookup)."""

    def __init__(self, users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, any_user: bool = False) -> None:
        self.n_users = n_users
        #: the published code's erratum: any user is a negative, a listener of the item included
        self.any_user = any_user
        self.row_bytes = (n_items + 7) // 8
        bitmap = np.zeros(n_users * self.row_bytes, dtype=np.uint8)
        flat = users.astype(np.int64) * self.row_bytes + (items >> 3)
        np.bitwise_or.at(bitmap, flat, (1 << (items & 7)).astype(np.uint8))
        self.bitmap = bitmap

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        byte = self.bitmap[users.astype(np.int64) * self.row_bytes + (items >> 3)]
        return ((byte >> (items & 7)) & 1).astype(bool)

    def sample(self, items: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """[B, n] negative users for each item and a mask of slots that found one."""
        cand = rng.integers(0, self.n_users, size=(len(items), n))
        if self.any_user:
            return cand, np.ones(cand.shape, dtype=bool)
        item_grid = np.broadcast_to(items[:, None], cand.shape)
        bad = self.is_positive(cand, item_grid)
        for _ in range(MAX_NEGATIVE_REDRAWS):
            if not bad.any():
                break
            cand[bad] = rng.integers(0, self.n_users, size=int(bad.sum()))
            bad[bad] = self.is_positive(cand[bad], item_grid[bad])
        return cand, ~bad


class ShallowNet(NeuralRecommender):
    def __init__(
        self,
        data: SplitData,
        item_vectors: np.ndarray,
        freeze_items: bool = True,
        margin: float = 0.2,
        n_negatives: int = 20,
        batch_size: int = 10000,
        tower: str = "shared",
        items: ItemSettings | None = None,
        inverted_freeze: bool = False,
        any_negatives: bool = False,
    ) -> None:
        """`item_vectors`: the content vectors, or for `items.mode == "id"` the random
        vectors the learned table starts from. `items` (default: `content`, or `finetune`
        at the full rate when `freeze_items` is false) says how they enter (models.items)."""
        super().__init__()
        if tower not in ("shared", "separate"):
            raise ValueError(f"shallow: tower must be 'shared' or 'separate', got {tower!r}")
        if items is None:
            items = ItemSettings("content") if freeze_items else ItemSettings("finetune", finetune_lr_factor=1.0)
        dim = item_vectors.shape[-1]  # [items, dim], or [items, layers, dim] for layers: weighted
        if inverted_freeze and items.mode in ("content", "matched_random"):
            # the published code's erratum: the item table trained at the full rate, users frozen
            items = replace(items, mode="finetune", finetune_lr_factor=1.0)
        learned = items.mode == "id"
        # the tower is the projection: items enter at their own width
        self.items = ItemInput(
            items, data.n_items, dim, None if learned else item_vectors, project=False, id_init=item_vectors if learned else None
        )
        with torch.no_grad():
            start = self.items().detach().numpy()
        self.user_table = nn.Parameter(torch.from_numpy(user_means(data, start)), requires_grad=not inverted_freeze)
        self.user_tower = nn.Sequential(nn.Linear(dim, dim), nn.ReLU())
        self.item_tower = None if tower == "shared" else nn.Sequential(nn.Linear(dim, dim), nn.ReLU())
        # left out of model.pt: a frozen item table is the embeddings file (a frozen user table is kept)
        self.frozen = self.items.frozen_names("items.")
        self.margin = margin
        self.n_negatives = n_negatives
        self.batch_size = batch_size
        self.pair_users, self.pair_items = data.train_pairs()
        self.sampler = NegativeUserSampler(self.pair_users, self.pair_items, data.n_users, data.n_items, any_negatives)
        self.unfilled_negatives = 0

    @property
    def item_table(self) -> nn.Parameter:
        """The item vectors the tower sees (content, or the learned ID table)."""
        return self.items.table if self.items.table is not None else self.items.id_table

    def lr_scales(self) -> dict[str, float]:
        return self.items.lr_scales("items.")

    def _items_out(self, items: torch.Tensor | None = None) -> torch.Tensor:
        table = self.items(items)  # only the batch's rows (a layer mixture mixes only those)
        return F.normalize((self.item_tower or self.user_tower)(table), dim=-1)

    def _users_out(self, users: torch.Tensor | None = None) -> torch.Tensor:
        table = self.user_table if users is None else self.user_table[users]
        return F.normalize(self.user_tower(table), dim=-1)

    def batch_loss(self, users: np.ndarray, items: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        neg, valid = self.sampler.sample(items, self.n_negatives, rng)
        self.unfilled_negatives += int((~valid).sum())
        device = self.device
        # each distinct user through the tower once; (user, item) scores as sparse pair dots
        distinct, inverse = np.unique(np.concatenate([users, neg.ravel()]), return_inverse=True)
        user_out = self._users_out(torch.as_tensor(distinct, device=device))
        item_out = self._items_out(torch.as_tensor(items, device=device))
        b, m = len(users), self.n_negatives
        cols = np.concatenate([np.arange(b), np.repeat(np.arange(b), m)])
        scores = pair_dot(user_out, item_out, torch.as_tensor(inverse, device=device), torch.as_tensor(cols, device=device))
        return hinge_loss(scores[:b], scores[b:].view(b, m), self.margin, torch.as_tensor(valid, device=device))

    def steps_per_epoch(self) -> int:
        return -(-len(self.pair_users) // self.batch_size)

    def train_epoch(self, optimizer: torch.optim.Optimizer, rng: np.random.Generator, max_steps: int | None = None) -> float:
        order = rng.permutation(len(self.pair_users))
        self.unfilled_negatives = 0
        total, steps = 0.0, 0
        for start in range(0, len(order), self.batch_size):
            if max_steps is not None and steps >= max_steps:
                break
            idx = order[start : start + self.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = self.batch_loss(self.pair_users[idx], self.pair_items[idx], rng)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            steps += 1
        if self.unfilled_negatives:
            log.warning(
                "%d negative slots left out of the loss this epoch: their items were played by nearly every user",
                self.unfilled_negatives,
            )
        return total / max(steps, 1)

    def factors(self) -> Factors:
        with torch.no_grad():
            return Factors(users=self._users_out(), items=self._items_out(), cosine=True)


def build(context: RunContext) -> ShallowNet:
    """The registry's entry point (shallow.yaml declares the type). For `items: id` the
    vectors are the `random` backend's seeded start of the learned table."""
    spec = context.spec
    assert context.vectors is not None and context.items is not None
    return ShallowNet(
        context.data,
        context.vectors.vectors,
        margin=float(spec.get("margin", 0.2)),
        n_negatives=int(spec.get("n_negatives", 20)),
        batch_size=int(spec.get("batch_size", 10000)),
        tower=spec.get("tower", "shared"),
        items=context.items,
        inverted_freeze=bool(spec.get("erratum_inverted_freeze", False)),
        any_negatives=bool(spec.get("erratum_any_negatives", False)),
    )

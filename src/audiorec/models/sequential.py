"""What BERT4Rec and SASRec share: items in, a transformer over the user's latest tracks,
a full-softmax output layer tied to the item matrix.

Items enter through `models.items.ItemInput` (the `items:` setting: frozen content through a
learned projection, a learned ID table, both, or fine-tuned content). Sequences are
right-aligned (padding on the left) and position embeddings count back from the end, so the
position a model predicts from is always the last one, and each batch is cut to its longest
sequence instead of always padding to `max_len`. The loss is the chunked, fused
cross-entropy of `losses.linear_cross_entropy` over the positions that carry a target: their
hidden states are gathered before the output layer, so logits never exist for the others.
Subclasses say which positions carry which target (`batch_loss`) and where a user's ranking
vector is read (`user_vectors`).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .base import Factors, NeuralRecommender
from .data import SplitData
from .items import ItemInput, ItemSettings
from .losses import IGNORE, linear_cross_entropy

if TYPE_CHECKING:
    from .registry import RunContext


class SequentialRecommender(NeuralRecommender):
    """`n_special` learned token vectors follow the items in the token table: PAD first."""

    name = "sequential"
    n_special = 1

    def __init__(
        self,
        data: SplitData,
        item_vectors: np.ndarray | None,
        freeze_items: bool = True,
        hidden_size: int | None = None,
        random_dim: int = 64,
        n_layers: int = 2,
        n_heads: int = 2,
        inner_size: int = 256,
        dropout: float = 0.1,
        max_len: int = 300,
        batch_size: int = 128,
        output_bias: bool = False,
        init_std: float = 0.02,
        precision: str = "fp32",
        items: ItemSettings | None = None,
        bias_init: str = "zero",
    ) -> None:
        """`item_vectors`: the backend's vectors (None, or ignored, for `items: id`).
        `items` defaults to `content` (`id` without vectors; `finetune` at the full rate
        when `freeze_items` is false)."""
        super().__init__()
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"{self.name}: precision must be 'fp32' or 'bf16', got {precision!r}")
        if items is None:
            if item_vectors is None:
                items = ItemSettings("id", random_dim=random_dim)
            else:
                items = ItemSettings("content") if freeze_items else ItemSettings("finetune", finetune_lr_factor=1.0)
        self.bf16 = precision == "bf16"
        n_items = data.n_items
        if items.mode == "id":
            hidden = hidden_size or random_dim
        else:
            if item_vectors is None:
                raise ValueError(f"{self.name}: items: {items.mode} needs the backend's vectors")
            hidden = hidden_size or item_vectors.shape[-1]
        self.items = ItemInput(items, n_items, hidden, None if items.mode == "id" else item_vectors, init_std=init_std)
        self.frozen = self.items.frozen_names("items.")
        if hidden % n_heads:
            raise ValueError(
                f"{self.name}: hidden size {hidden} is not divisible by n_heads={n_heads}; "
                f"set models.<model>.hidden_size (or n_heads) so that it is"
            )
        self.n_heads = n_heads
        self.pad = n_items
        self.special = nn.Parameter(torch.randn(self.n_special, hidden) * init_std)
        self.positions = nn.Parameter(torch.randn(max_len, hidden) * init_std)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            hidden, n_heads, inner_size, dropout, activation="gelu", batch_first=True, layer_norm_eps=1e-12
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        if bias_init not in ("zero", "log_popularity"):
            raise ValueError(f"{self.name}: bias_init must be 'zero' or 'log_popularity', got {bias_init!r}")
        self.bias = nn.Parameter(self.initial_bias(data, bias_init)) if output_bias else None
        self.max_len = max_len
        self.batch_size = batch_size
        self.indptr = data.train.indptr
        self.sequence_items = data.train.indices

    @staticmethod
    def initial_bias(data: SplitData, how: str) -> torch.Tensor:
        """`zero`, or `log_popularity`: log(1 + train listeners) minus its mean, so that the
        untrained model ranks like popularity and training learns what differs from it
        (a few hundred Adam steps at lr 1e-3 move a bias by well under one unit)."""
        if how == "zero":
            return torch.zeros(data.n_items)
        counts = np.bincount(data.train.indices, minlength=data.n_items).astype(np.float64)
        logs = np.log1p(counts)
        return torch.from_numpy((logs - logs.mean()).astype(np.float32))

    # --- inputs ---

    @property
    def item_table(self) -> nn.Parameter:
        """The vectors items start from (content, or the learned ID table)."""
        return self.items.table if self.items.table is not None else self.items.id_table

    @property
    def projection(self) -> nn.Linear | None:
        return self.items.projection

    def lr_scales(self) -> dict[str, float]:
        return self.items.lr_scales("items.")

    def item_matrix(self) -> torch.Tensor:
        """[n_items, hidden]: the input embeddings and (tied) output weights of every item."""
        return self.items()

    def window(self, users: np.ndarray, length: int) -> np.ndarray:
        """[B, W] right-aligned token ids of each user's latest (at most `length`) train
        items, padded on the left with PAD; W is the longest of the batch."""
        starts, ends = self.indptr[users], self.indptr[users + 1]
        lengths = np.minimum(ends - starts, length)
        width = int(lengths.max())
        src = ends[:, None] - width + np.arange(width)[None, :]
        real = src >= (ends - lengths)[:, None]
        return np.where(real, self.sequence_items[np.where(real, src, 0)], self.pad)

    def attention_mask(self, tokens: torch.Tensor) -> torch.Tensor | None:
        """Extra attention mask for `encode` (None: every real token sees every real token)."""
        return None

    def encode(self, tokens: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Hidden states [B, L, H] of right-aligned token ids."""
        table = torch.cat([items, self.special])
        x = table[tokens] + self.positions[self.max_len - tokens.shape[1] :]
        x = self.dropout(self.norm(x))
        mask = self.attention_mask(tokens)
        if mask is None:
            return self.encoder(x, src_key_padding_mask=tokens == self.pad)
        return self.encoder(x, mask=mask)

    def autocast(self) -> torch.autocast:
        """bf16 matmuls (fp32 weights, softmax and loss) when precision is bf16."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def output_loss(self, hidden: torch.Tensor, items: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Full-softmax cross entropy over all items at the positions whose label is not
        IGNORE, fused with the tied output layer (and the item bias). labels [B, L], or
        [B, L, k] for k targets per position (one softmax per position, each target a term)."""
        where = labels != IGNORE
        if labels.dim() == 3:
            where = where.any(dim=2)
        return linear_cross_entropy(hidden[where], items, labels[where], self.bias, bf16=self.bf16)

    # --- training ---

    @abstractmethod
    def batch_loss(self, users: np.ndarray, rng: np.random.Generator) -> torch.Tensor | None:
        """The loss of one batch of users (None: the batch has no target; skipped)."""

    def epoch_batches(self, rng: np.random.Generator) -> list[np.ndarray]:
        """Users in random batches of similar length: shuffle, sort pools of 64 batches by
        length, cut, shuffle the batches. Cuts padding several-fold on long-tailed histories
        while every user still appears once per epoch in a random batch."""
        lengths = np.minimum(np.diff(self.indptr), self.max_len)
        order = rng.permutation(len(lengths))
        # a user whose every train track lacks a vector has an empty sequence (nothing to learn)
        order = order[lengths[order] > 0]
        pool = self.batch_size * 64
        batches = []
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    def steps_per_epoch(self) -> int:
        return -(-(len(self.indptr) - 1) // self.batch_size)

    def train_epoch(self, optimizer: torch.optim.Optimizer, rng: np.random.Generator, max_steps: int | None = None) -> float:
        total, steps = 0.0, 0
        for users in self.epoch_batches(rng):
            if max_steps is not None and steps >= max_steps:
                break
            optimizer.zero_grad(set_to_none=True)
            loss = self.batch_loss(users, rng)
            if loss is None:
                continue
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            steps += 1
        return total / max(steps, 1)

    # --- ranking ---

    @abstractmethod
    def user_vectors(self, users: np.ndarray, items: torch.Tensor | None = None) -> torch.Tensor:
        """[B, H] ranking vectors of the users (scored against the item matrix)."""

    def factors(self) -> Factors:
        with torch.no_grad():
            items = self.item_matrix().detach()

        def users(chunk: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return self.user_vectors(chunk.cpu().numpy(), items)

        return Factors(users=users, items=items, bias=None if self.bias is None else self.bias.detach())


def sequential_settings(context: RunContext) -> dict[str, Any]:
    """The constructor arguments BERT4Rec and SASRec share, from a run's config slice
    (schemas/config.schema.yaml `$defs/model_transformer`, `model_content`)."""
    spec = context.spec
    return {
        "hidden_size": spec.get("hidden_size"),
        "random_dim": int(spec.get("random_dim", 64)),
        "n_layers": int(spec.get("n_layers", 2)),
        "n_heads": int(spec.get("n_heads", 2)),
        "inner_size": int(spec.get("inner_size", 256)),
        "dropout": float(spec.get("dropout", 0.1)),
        "max_len": int(spec.get("max_len", 300)),
        "batch_size": int(spec.get("batch_size", 128)),
        "output_bias": bool(spec.get("output_bias", False)),
        "bias_init": spec.get("bias_init", "zero"),
        "precision": context.precision,
        "items": context.items,
    }

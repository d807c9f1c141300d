"""SASRec (Kang & McAuley 2018) trained with full-softmax cross entropy (Klenitskiy & Vasilev,
RecSys 2023: "gSASRec/SASRec+ beats BERT4Rec").

Causal self-attention over the user's latest train tracks: the hidden state at each position
sees only that track and the ones before it, and is trained to predict the next one, with a
softmax over the whole catalogue at every position (the fused, chunked output layer BERT4Rec
uses: `sequential.SequentialRecommender.output_loss`). A user is ranked from the hidden state
at their latest track.

Training and prediction use the same positions. Sequences are right-aligned: in training
a user's latest `max_len` + 1 tracks give `max_len` inputs (all but the last) and `max_len`
targets (all but the first); in prediction the latest `max_len` tracks are the input. The last
input position is therefore the same position embedding in both, and it is the one a
user's ranking vector is read from.

Two settings change which targets carry the loss, and nothing else: `targets_ahead` k trains
each position on each of the next k tracks (one cross-entropy term per target, the same hidden
state; PinnerFormer's dense all-action loss, Pancha et al., KDD 2022), `target_window` W only
the latest W positions of each sequence. Both default to the usual SASRec (k = 1, every position).

Padding never attends and is never attended to: a real position may attend to itself and to
earlier real positions only; a padding position attends to itself alone (it must attend to
something, or its softmax is 0/0 and the NaN reaches real positions through the values).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .sequential import IGNORE, SequentialRecommender, sequential_settings

if TYPE_CHECKING:
    from .registry import RunContext


class SASRec(SequentialRecommender):
    name = "sasrec"
    n_special = 1  # [PAD]

    def __init__(self, *args: Any, target_window: int | None = None, targets_ahead: int = 1, **kwargs: Any) -> None:
        """`target_window`: train the loss only at the latest `target_window` positions of
        each training sequence (None: at every position, the usual SASRec). `targets_ahead`:
        each position predicts each of the next `targets_ahead` tracks, one cross-entropy
        term per target (1: the next track only, the usual SASRec)."""
        super().__init__(*args, **kwargs)
        if target_window is not None and target_window < 1:
            raise ValueError(f"sasrec: target_window must be a positive integer or null, got {target_window!r}")
        if targets_ahead < 1:
            raise ValueError(f"sasrec: targets_ahead must be a positive integer, got {targets_ahead!r}")
        self.target_window = target_window
        self.targets_ahead = targets_ahead

    def attention_mask(self, tokens: torch.Tensor) -> torch.Tensor:
        """[B * heads, L, L] bool, True = may not attend: a later position, or padding other
        than the position itself."""
        length = tokens.shape[1]
        later = torch.ones(length, length, dtype=torch.bool, device=tokens.device).triu(1)
        padded = (tokens == self.pad)[:, None, :]  # key j is padding
        itself = torch.eye(length, dtype=torch.bool, device=tokens.device)
        blocked = later[None] | (padded & ~itself[None])
        return blocked.repeat_interleave(self.n_heads, dim=0)

    def training_batch(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(inputs [B, W], labels): each user's latest max_len + 1 tracks shifted by one.
        labels [B, W] with `targets_ahead` 1, else [B, W, targets_ahead] (the k-th column:
        the track k steps after the input; a position near the end has fewer). A label is
        IGNORE where it or its input is padding, past the end, or before the latest
        `target_window` positions."""
        window = self.window(users, self.max_len + 1)
        inputs = window[:, :-1]
        width = inputs.shape[1]
        ahead = []
        for k in range(1, self.targets_ahead + 1):
            targets = np.full_like(inputs, self.pad)
            targets[:, : max(0, width + 1 - k)] = window[:, k:]
            ahead.append(np.where((inputs == self.pad) | (targets == self.pad), IGNORE, targets))
        labels = ahead[0] if self.targets_ahead == 1 else np.stack(ahead, axis=2)
        if self.target_window is not None and self.target_window < width:
            labels[:, : width - self.target_window] = IGNORE
        return inputs, labels

    def sequences(self, users: np.ndarray) -> np.ndarray:
        """[B, L] prediction input: the latest max_len tracks, right-aligned."""
        return self.window(users, self.max_len)

    def loss(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            items = self.item_matrix()
            # several targets per position ([B, L, k] labels) share that position's softmax
            return self.output_loss(self.encode(inputs, items), items, labels)

    def batch_loss(self, users: np.ndarray, rng: np.random.Generator) -> torch.Tensor | None:
        inputs, labels = self.training_batch(users)
        if not (labels != IGNORE).any():
            return None
        device = self.device
        return self.loss(torch.as_tensor(inputs, device=device), torch.as_tensor(labels, device=device))

    def user_vectors(self, users: np.ndarray, items: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden state at each user's latest track."""
        tokens = torch.as_tensor(self.sequences(users), device=self.device)
        with self.autocast():
            hidden = self.encode(tokens, self.item_matrix() if items is None else items)[:, -1]
        return hidden.float()


def build(context: RunContext) -> SASRec:
    """The registry's entry point (sasrec.yaml declares the type)."""
    vectors = None if context.vectors is None else context.vectors.vectors
    window = context.spec.get("target_window")
    return SASRec(
        context.data, vectors, target_window=None if window is None else int(window),
        targets_ahead=int(context.spec.get("targets_ahead", 1)), **sequential_settings(context),
    )

"""BERT4Rec (Sun et al. 2019) over content item vectors, as in the paper's §2.2.

Items enter the transformer as set by `items:` (models.items; the paper: pretrained vectors,
frozen, through a learned projection; the `random` backend: a learned table). The output
layer is tied to the same item matrix, so with content every item, including one never seen
in training, is scored through its content. The transformer, the item input and the fused
output layer are shared with SASRec (models.sequential).

Three points where the published code went wrong, done right here:
- the maximum length (300) is the same in training and prediction (it predicted from 50);
- the cross entropy is computed only at masked positions: their hidden states are gathered
  *before* the output layer, so logits exist only for the ~20% of positions that carry a
  loss (numerically the same loss as the full computation), and even those only one chunk
  at a time (`losses.linear_cross_entropy`);
- prediction appends a mask token after the user's last (at most 299) items and reads the
  scores at that position.

`erratum_predict_last_50` restores the published code's prediction from a 50-long sequence
(its latest 49 tracks and the mask, `max_length=50` of its prediction dataset) while training
used `max_len`. Positions count from the end here, so the shorter input does not also move
the mask's position embedding as it did there (left-aligned positions).

Sequences are right-aligned (padding on the left), so the appended mask always sits at the
last position.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from .data import SplitData
from .sequential import IGNORE, SequentialRecommender, sequential_settings

if TYPE_CHECKING:
    from .registry import RunContext

__all__ = ["ERRATUM_PREDICT_LEN", "IGNORE", "Bert4Rec"]

#: the published code's prediction length (its erratum): the latest 49 tracks + the mask
ERRATUM_PREDICT_LEN = 50


class Bert4Rec(SequentialRecommender):
    name = "bert4rec"
    n_special = 2  # [PAD, MASK]

    def __init__(
        self,
        data: SplitData,
        item_vectors: np.ndarray | None,
        *args,
        mask_prob: float = 0.2,
        predict_len: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(data, item_vectors, *args, **kwargs)
        self.mask = data.n_items + 1
        # tokens of a prediction sequence, the mask included: max_len (the fix) or fewer
        self.predict_len = self.max_len if predict_len is None else min(int(predict_len), self.max_len)
        self.mask_prob = mask_prob

    def sequences(self, users: np.ndarray, append_mask: bool) -> np.ndarray:
        """[B, L] right-aligned token ids of the users' latest train items (at most max_len
        tokens in training, predict_len with the appended mask), padded on the left with PAD."""
        tokens = self.window(users, self.predict_len - 1 if append_mask else self.max_len)
        if append_mask:
            tokens = np.concatenate([tokens, np.full((len(users), 1), self.mask)], axis=1)
        return tokens

    # --- training ---

    def masked_loss(self, inputs: torch.Tensor, labels: torch.Tensor, gather: bool = True) -> torch.Tensor:
        """Cross entropy over all items at the positions whose label is not IGNORE.

        gather=True selects those positions before the output layer; gather=False scores
        every position and lets cross_entropy ignore the rest (the reference the tests
        compare against: same value, far more memory)."""
        with self.autocast():
            return self._masked_loss(inputs, labels, gather)

    def _masked_loss(self, inputs: torch.Tensor, labels: torch.Tensor, gather: bool) -> torch.Tensor:
        items = self.item_matrix()
        hidden = self.encode(inputs, items)
        if gather:
            return self.output_loss(hidden, items, labels)
        logits = hidden @ items.T
        if self.bias is not None:
            logits = logits + self.bias
        return F.cross_entropy(logits.reshape(-1, items.shape[0]).float(), labels.reshape(-1), ignore_index=IGNORE)

    def mask_batch(self, tokens: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Replace each real token by MASK with probability mask_prob; labels hold the
        original item there and IGNORE elsewhere."""
        masked = (rng.random(tokens.shape) < self.mask_prob) & (tokens != self.pad)
        inputs = np.where(masked, self.mask, tokens)
        labels = np.where(masked, tokens, IGNORE)
        return inputs, labels

    def batch_loss(self, users: np.ndarray, rng: np.random.Generator) -> torch.Tensor | None:
        inputs, labels = self.mask_batch(self.sequences(users, append_mask=False), rng)
        if not (labels != IGNORE).any():
            return None
        device = self.device
        return self.masked_loss(torch.as_tensor(inputs, device=device), torch.as_tensor(labels, device=device))

    # --- ranking ---

    def user_vectors(self, users: np.ndarray, items: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden state at a mask token appended after each user's latest (predict_len - 1) items."""
        tokens = torch.as_tensor(self.sequences(users, append_mask=True), device=self.device)
        with self.autocast():
            hidden = self.encode(tokens, self.item_matrix() if items is None else items)[:, -1]
        return hidden.float()


def build(context: RunContext) -> Bert4Rec:
    """The registry's entry point (bert4rec.yaml declares the type)."""
    vectors = None if context.vectors is None else context.vectors.vectors
    return Bert4Rec(
        context.data,
        vectors,
        mask_prob=float(context.spec.get("mask_prob", 0.2)),
        predict_len=ERRATUM_PREDICT_LEN if context.spec.get("erratum_predict_last_50") else None,
        **sequential_settings(context),
    )

"""BERT4Rec (Sun et al. 2019) over content item vectors, as in the paper's §2.2.

Items enter the transformer as their pretrained vectors through a learned projection (the
vectors themselves frozen unless `freeze_items: false`), or, for the `random` backend, as a
learned table. The output layer is tied to the same item matrix, so every item, including
one never seen in training, is scored through its content.

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

Sequences are right-aligned (padding on the left) and position embeddings count back from
the end, so the appended mask always sits at the last position, and each batch is cut to
its longest sequence instead of always padding to 300.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .base import Factors, NeuralRecommender
from .data import SplitData
from .losses import linear_cross_entropy

IGNORE = -100
#: the published code's prediction length (its erratum): the latest 49 tracks + the mask
ERRATUM_PREDICT_LEN = 50


class Bert4Rec(NeuralRecommender):
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
        mask_prob: float = 0.2,
        batch_size: int = 128,
        output_bias: bool = False,
        init_std: float = 0.02,
        precision: str = "fp32",
        predict_len: int | None = None,
    ) -> None:
        super().__init__()
        if precision not in ("fp32", "bf16"):
            raise ValueError(f"bert4rec: precision must be 'fp32' or 'bf16', got {precision!r}")
        self.bf16 = precision == "bf16"
        n_items = data.n_items
        if item_vectors is None:
            hidden = hidden_size or random_dim
            self.item_table = nn.Parameter(torch.randn(n_items, hidden) * init_std)
            self.projection: nn.Module | None = None
        else:
            hidden = hidden_size or item_vectors.shape[1]
            vectors = torch.from_numpy(np.array(item_vectors, dtype=np.float32))
            self.item_table = nn.Parameter(vectors, requires_grad=not freeze_items)
            self.projection = nn.Linear(item_vectors.shape[1], hidden)
            self.frozen = ("item_table",) if freeze_items else ()
        if hidden % n_heads:
            raise ValueError(
                f"bert4rec: hidden size {hidden} is not divisible by n_heads={n_heads}; "
                f"set models.<model>.hidden_size (or n_heads) so that it is"
            )
        self.pad, self.mask = n_items, n_items + 1
        self.special = nn.Parameter(torch.randn(2, hidden) * init_std)  # [PAD, MASK]
        self.positions = nn.Parameter(torch.randn(max_len, hidden) * init_std)
        self.norm = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            hidden, n_heads, inner_size, dropout, activation="gelu", batch_first=True, layer_norm_eps=1e-12
        )
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.bias = nn.Parameter(torch.zeros(n_items)) if output_bias else None
        self.max_len = max_len
        # tokens of a prediction sequence, the mask included: max_len (the fix) or fewer
        self.predict_len = max_len if predict_len is None else min(int(predict_len), max_len)
        self.mask_prob = mask_prob
        self.batch_size = batch_size
        self.indptr = data.train.indptr
        self.sequence_items = data.train.indices

    # --- inputs ---

    def item_matrix(self) -> torch.Tensor:
        """[n_items, hidden]: the input embeddings and (tied) output weights of every item."""
        return self.item_table if self.projection is None else self.projection(self.item_table)

    def sequences(self, users: np.ndarray, append_mask: bool) -> np.ndarray:
        """[B, L] right-aligned token ids of the users' latest train items (at most max_len
        tokens in training, predict_len with the appended mask), padded on the left with PAD."""
        starts, ends = self.indptr[users], self.indptr[users + 1]
        keep = self.predict_len - 1 if append_mask else self.max_len
        lengths = np.minimum(ends - starts, keep)
        width = int(lengths.max())
        src = ends[:, None] - width + np.arange(width)[None, :]
        real = src >= (ends - lengths)[:, None]
        tokens = np.where(real, self.sequence_items[np.where(real, src, 0)], self.pad)
        if append_mask:
            tokens = np.concatenate([tokens, np.full((len(users), 1), self.mask)], axis=1)
        return tokens

    def encode(self, tokens: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Hidden states [B, L, H] of right-aligned token ids."""
        table = torch.cat([items, self.special])
        x = table[tokens] + self.positions[self.max_len - tokens.shape[1] :]
        x = self.dropout(self.norm(x))
        return self.encoder(x, src_key_padding_mask=tokens == self.pad)

    # --- training ---

    def autocast(self) -> torch.autocast:
        """bf16 matmuls (fp32 weights, softmax and loss) when precision is bf16."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)

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
            where = labels != IGNORE
            return linear_cross_entropy(hidden[where], items, labels[where], self.bias, bf16=self.bf16)
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

    def epoch_batches(self, rng: np.random.Generator) -> list[np.ndarray]:
        """Users in random batches of similar length: shuffle, sort pools of 64 batches by
        length, cut, shuffle the batches. Cuts padding several-fold on long-tailed histories
        while every user still appears once per epoch in a random batch."""
        lengths = np.minimum(np.diff(self.indptr), self.max_len)
        order = rng.permutation(len(lengths))
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
        device = self.device
        total, steps = 0.0, 0
        for users in self.epoch_batches(rng):
            if max_steps is not None and steps >= max_steps:
                break
            inputs, labels = self.mask_batch(self.sequences(users, append_mask=False), rng)
            if not (labels != IGNORE).any():
                continue
            optimizer.zero_grad(set_to_none=True)
            loss = self.masked_loss(torch.as_tensor(inputs, device=device), torch.as_tensor(labels, device=device))
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            steps += 1
        return total / max(steps, 1)

    # --- ranking ---

    def user_vectors(self, users: np.ndarray, items: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden state at a mask token appended after each user's latest (predict_len - 1) items."""
        tokens = torch.as_tensor(self.sequences(users, append_mask=True), device=self.device)
        with self.autocast():
            hidden = self.encode(tokens, self.item_matrix() if items is None else items)[:, -1]
        return hidden.float()

    def factors(self) -> Factors:
        with torch.no_grad():
            items = self.item_matrix().detach()

        def users(chunk: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return self.user_vectors(chunk.cpu().numpy(), items)

        return Factors(users=users, items=items, bias=None if self.bias is None else self.bias.detach())

"""`layer: weighted` building block: a learned softmax-weighted sum of a backend's cached layers.

MARBLE's strongest simple baseline over a layered encoder mixes its layers with weights
learned for the task. For the neural recommenders the frozen item table becomes
`sum_l softmax(w)_l * layers[:, l, :]` over the `/layers` of the cache (all of one width),
with `w` (one scalar per layer, initialised equal: the `mean` layer) trained with the model.
The layers stay a frozen buffer; only the L weights learn. `weights()` gives the mixture to
report after training.

Wired through `models.items.ItemInput` (the `layers: weighted` model setting, read from the
cache by `item_vectors.load_layer_stack`), reported by `models.run.layer_weights` into
run.json, and swept as the `weighted` point of the layer sweep (analysis.layer_sweep).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class LayerMix(nn.Module):
    """Item vectors [N, D] as a softmax-weighted sum of frozen layers [N, L, D]."""

    def __init__(self, layers: np.ndarray | torch.Tensor) -> None:
        super().__init__()
        stack = torch.as_tensor(np.asarray(layers, dtype=np.float32))
        if stack.ndim != 3 or stack.shape[1] < 1:
            raise ValueError(f"layer: weighted needs layers [items, layers, dim], got shape {tuple(stack.shape)}")
        self.register_buffer("layers", stack)
        self.logits = nn.Parameter(torch.zeros(stack.shape[1]))

    def weights(self) -> torch.Tensor:
        """The mixture over layers (sums to 1)."""
        return torch.softmax(self.logits, dim=0)

    def forward(self, index: torch.Tensor | None = None) -> torch.Tensor:
        """Mixed vectors of the items `index` (all items when None)."""
        stack = self.layers if index is None else self.layers[index]
        return torch.einsum("...ld,l->...d", stack, self.weights())

    def report(self, names: list[str]) -> dict[str, float]:
        """{layer name: weight}, for run.json."""
        return {name: float(w) for name, w in zip(names, self.weights().detach().cpu().tolist())}

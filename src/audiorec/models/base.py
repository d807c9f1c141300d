"""What every recommender hands to ranking, and what a trainable one adds.

All models reduce to factors (user vectors, item matrix, optional item bias, dot or
cosine), so one ranking routine (`audiorec.evaluation.ranking.top_k`) serves them all and
a difference between two runs can only come from the model, never from how it was ranked.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..evaluation.ranking import Seen, TopK, UserFactors, top_k


@dataclass
class Factors:
    """scores[u, i] = users(u) . items[i] (+ bias[i]); both sides L2-normalised first if cosine."""

    users: torch.Tensor | UserFactors
    items: torch.Tensor
    bias: torch.Tensor | None = None
    cosine: bool = False

    def rank(self, users: np.ndarray, seen: Seen, k: int, **kwargs) -> TopK:
        return top_k(self.users, self.items, users, seen, k, item_bias=self.bias, cosine=self.cosine, **kwargs)


class Recommender(ABC):
    """A fitted recommender: its ranking factors and the tensors `model.pt` keeps."""

    @abstractmethod
    def factors(self) -> Factors: ...

    @abstractmethod
    def saved_state(self) -> dict[str, torch.Tensor]: ...


class NeuralRecommender(nn.Module, Recommender):
    """A recommender trained by `audiorec.models.training.fit`, epoch by epoch.

    Frozen tables (pretrained item vectors) are left out of `saved_state`: they are in the
    embedding cache already, and at Jukebox's 4800 dims they would dwarf the learned weights.
    """

    frozen: tuple[str, ...] = ()

    @abstractmethod
    def train_epoch(self, optimizer: torch.optim.Optimizer, rng: np.random.Generator, max_steps: int | None = None) -> float:
        """One pass over the training data; returns the mean loss. All randomness from `rng`
        (and torch's global RNG, which `fit` seeds per epoch, for dropout). `max_steps`
        stops early (benchmarks time a few steps of a paper-scale epoch)."""

    @abstractmethod
    def steps_per_epoch(self) -> int: ...

    def saved_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.state_dict().items() if k not in self.frozen}

    def lr_scales(self) -> dict[str, float]:
        """Parameter name -> factor on the learning rate, for parameters trained slower than
        the rest (`items: finetune`'s vectors). Empty: one rate for everything."""
        return {}

    def optimizer_groups(self, lr: float) -> list[dict]:
        """Adam parameter groups: the trainable parameters at `lr`, then one group per other
        rate factor (ReduceLROnPlateau scales every group alike)."""
        scales = self.lr_scales()
        groups: dict[float, list[nn.Parameter]] = {1.0: []}
        for name, param in self.named_parameters():
            if param.requires_grad:
                groups.setdefault(scales.get(name, 1.0), []).append(param)
        return [{"params": params, "lr": lr * factor} for factor, params in groups.items() if params]

    def load_saved_state(self, state: dict[str, torch.Tensor]) -> None:
        missing, unexpected = self.load_state_dict(state, strict=False)
        if unexpected or set(missing) - set(self.frozen):
            raise ValueError(f"saved state does not fit this model: missing {missing}, unexpected {unexpected}")

    @property
    def device(self) -> torch.device:
        return next(iter(self.parameters())).device

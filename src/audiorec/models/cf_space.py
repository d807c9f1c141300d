"""The collaborative space that content models map into: the `ials` run's user and item
factors, read once here for every model that places content in that space (content2cf,
contrastive), and what those models share beyond the mapping itself: the warm tracks they
learn from, the early-stopped training loop, and the recommender that scores with the iALS
users and the mapped content.

Why shared: both models must read the same run the same way (checked to index this split's
users and tracks), learn only from the same warm tracks (a train listen and a vector), and put
their content-derived item vectors back the same way (`warm_items`), so that a difference
between them is the mapping alone.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .base import Factors, Recommender
from .data import SplitData

if TYPE_CHECKING:
    from .registry import RunContext

WARM_ITEMS = ("own", "predicted")


def read_ials(path: str, data: SplitData, reader: str = "this model") -> tuple[torch.Tensor, torch.Tensor]:
    """(user factors, item factors) of an ials run's model.pt, checked to index the same users
    and tracks as this run's split."""
    saved = torch.load(path, weights_only=True)
    if saved.get("model") != "ials" or "item_factors" not in saved.get("state", {}):
        raise ValueError(f"{path}: not an ials run's model.pt (model {saved.get('model')!r}); {reader} reads the `ials` run")
    if list(saved["user_ids"]) != list(data.user_ids) or list(saved["track_ids"]) != list(data.track_ids):
        raise ValueError(f"{path}: its users/tracks are not this split's; re-run the ials job of this dataset")
    return saved["state"]["user_factors"].float(), saved["state"]["item_factors"].float()


def context_factors(context: RunContext, kind: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The iALS factors of a run's context, with the errors a misconfigured run gets."""
    if context.vectors is None:
        raise ValueError(f"{kind} needs item vectors (a backend, or `random`)")
    if "ials" not in context.inputs:
        raise ValueError(f"{kind} needs the `ials` run of its dataset and seed (declaration extra_inputs: ials)")
    return read_ials(context.inputs["ials"], context.data, kind)


def warm_tracks(data: SplitData, missing: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(warm mask, train listeners per track): a warm track has a train listen (so an iALS
    factor) and a content vector; the mapping learns from these only."""
    listeners = np.bincount(data.train.indices, minlength=data.n_items)
    warm = (listeners > 0) & ~missing
    if not warm.any():
        raise ValueError(f"{kind}: no track has both a train listen and a vector; nothing to learn from")
    return warm, listeners


def mlp(in_dim: int, out_dim: int, hidden: tuple[int, ...]) -> nn.Sequential:
    """An MLP (Linear+ReLU per hidden width, then Linear); `hidden: []` is linear."""
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def place_items(mapped: torch.Tensor, own: torch.Tensor, warm: np.ndarray, missing: np.ndarray, warm_items: str) -> torch.Tensor:
    """The item matrix a content model ranks with: each track's content-mapped vector, zero
    for a track without a vector (never a candidate; no made-up factor), and with
    `warm_items: own` a warm track's own iALS factor instead (only tracks without one mapped)."""
    if warm_items not in WARM_ITEMS:
        raise ValueError(f"warm_items must be one of {WARM_ITEMS}, got {warm_items!r}")
    items = mapped.detach().clone()
    items[torch.from_numpy(missing)] = 0.0
    if warm_items == "own":
        items[torch.from_numpy(warm)] = own[torch.from_numpy(warm)]
    return items.contiguous()


def train_early_stopping(
    model: nn.Module, epochs: int, patience: int, train_epoch: Callable[[], float], held_out: Callable[[float], float]
) -> tuple[float, int, list[float]]:
    """Epochs of `train_epoch` (returns the epoch's training loss) with the model in train
    mode, each followed by `held_out(train loss)` in eval mode without gradients (the
    monitored loss: held-out rows, or the training loss when none are held out). The weights
    of the epoch with the lowest monitored loss are loaded back at the end; training stops
    after `patience` epochs without a better one. Returns (best loss, best epoch, the
    monitored loss of every epoch run); best epoch 0 means no epoch beat the initial weights."""
    best = (float("inf"), 0, copy.deepcopy(model.state_dict()))
    history: list[float] = []
    for epoch in range(1, epochs + 1):
        model.train()
        trained = train_epoch()
        model.eval()
        with torch.no_grad():
            monitored = held_out(trained)
        history.append(monitored)
        if monitored < best[0]:
            best = (monitored, epoch, copy.deepcopy(model.state_dict()))
        elif epoch - best[1] >= patience:
            break
    model.load_state_dict(best[2])
    return best[0], best[1], history


Mapping = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[nn.Module, dict[str, Any]]]


class MappedContent(Recommender):
    """A recommender that scores with the iALS user factors and item vectors mapped from
    content: `fit(x, y, listeners)` trains the mapping on the warm tracks (content rows x,
    their iALS factors y, their train listeners) and returns it with what happened (run.json);
    every track's content is then mapped, and `place_items` puts the result in place
    (`warm_items`). `kind` names the model type in errors and its mapping's weights in
    model.pt."""

    def __init__(
        self, data: SplitData, vectors: np.ndarray, missing: np.ndarray, users: torch.Tensor, items: torch.Tensor,
        fit: Mapping, warm_items: str, device: torch.device, kind: str, state_prefix: str,
    ) -> None:  # fmt: skip
        if vectors.shape[0] != data.n_items or items.shape[0] != data.n_items:
            raise ValueError(f"{kind}: {vectors.shape[0]} vectors and {items.shape[0]} factors for {data.n_items} tracks")
        warm, listeners = warm_tracks(data, missing, kind)
        mapping, info = fit(vectors[warm], items.numpy()[warm], listeners[warm])
        with torch.no_grad():
            mapped = mapping(torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)).to(device)).cpu()
        self.users, self.items = users.contiguous(), place_items(mapped, items, warm, missing, warm_items)
        self.mapping, self.state_prefix = mapping.cpu(), state_prefix
        self.run_info = {**info, "warm_items": warm_items, "n_warm_items": int(warm.sum())}

    def factors(self) -> Factors:
        return Factors(users=self.users, items=self.items)

    def saved_state(self) -> dict[str, torch.Tensor]:
        state = {f"{self.state_prefix}.{k}": v.detach().clone() for k, v in self.mapping.state_dict().items()}
        return {**state, "item_factors": self.items.clone()}

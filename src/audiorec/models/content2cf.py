"""content2cf: predict a track's collaborative (iALS) item factor from its content vector
(van den Oord, Dieleman & Schrauwen, NeurIPS 2013), and recommend with the iALS user factors
times the predicted item factors.

Why this way: it is the classic answer to item cold start. iALS knows a listened track from
who listened to it; a track nobody played has no factor, but it has audio. A regression
trained on the warm tracks (content -> factor) places a new track where listeners of similar-
sounding tracks are, and the iALS users score it like any other track. How well the content
predicts the factors is exactly "how much collaborative information the audio carries".

The iALS factors are not refitted here: they are the `model.pt` of the `ials` run of the same
dataset and seed (declaration `extra_inputs`), so every content2cf run of every backend maps
into the same space and differs only in its content.

`warm_items`: `predicted` (default) scores every track by its predicted factor, so warm rows
measure the content too (under the warm protocol `own` would just be iALS); `own` keeps a warm
track's own iALS factor and predicts only tracks without one (the practical hybrid).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from .cf_space import WARM_ITEMS, MappedContent, context_factors, mlp, train_early_stopping
from .data import SplitData

if TYPE_CHECKING:
    from .registry import RunContext


@dataclass(frozen=True)
class Content2CFSettings:
    hidden: tuple[int, ...] = (256,)
    epochs: int = 200
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    loss: str = "mse"
    warm_items: str = "predicted"
    val_share: float = 0.1
    patience: int = 10

    @classmethod
    def from_config(cls, spec: dict[str, Any]) -> Content2CFSettings:
        values = {key: spec[key] for key in cls.__dataclass_fields__ if key in spec}
        if "hidden" in values:
            values["hidden"] = tuple(int(h) for h in values["hidden"])
        settings = cls(**values)
        if settings.loss not in ("mse", "listeners"):
            raise ValueError(f"models.<content2cf>.loss must be mse or listeners, got {settings.loss!r}")
        if settings.warm_items not in WARM_ITEMS:
            raise ValueError(f"models.<content2cf>.warm_items must be own or predicted, got {settings.warm_items!r}")
        if not 0 <= settings.val_share < 1:
            raise ValueError(f"models.<content2cf>.val_share must be in [0, 1), got {settings.val_share}")
        return settings


class Unstandardize(nn.Module):
    """The trained regressor mapped back to raw factors: out * std + mean (buffers, so they
    are saved with its weights in model.pt)."""

    def __init__(self, net: nn.Module, mean: np.ndarray, std: np.ndarray) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.from_numpy(mean))
        self.register_buffer("std", torch.from_numpy(std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x) * self.std + self.mean


def fit_regression(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray, settings: Content2CFSettings, seed: int, device: torch.device
) -> tuple[nn.Module, dict[str, Any]]:
    """Train content -> factor on the warm tracks (rows of x, y), minibatch Adam, weighted
    MSE; a seeded `val_share` of the rows is held out, and the weights of the epoch with the
    lowest held-out error are kept (early stop after `patience` epochs without a better one).

    The targets are learned standardised (per factor dimension, training rows' mean and
    spread) and the model maps back: iALS factors are small (|v| ~ 0.1), so a freshly
    initialised MLP would start far off and spend hundreds of steps on the scale alone; this
    way the untrained model already predicts about the mean factor (R² ~ 0), what content
    without signal (random vectors) should end at. Returns the model (eval mode, mapping to
    raw factors) and what happened (run.json)."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    order = rng.permutation(len(x))
    n_val = int(round(settings.val_share * len(x))) if len(x) > 1 else 0
    val, train = order[:n_val], order[n_val:]
    fit_rows = train if len(train) else order
    mean = y[fit_rows].mean(0).astype(np.float32)
    std = np.maximum(y[fit_rows].std(0), 1e-6).astype(np.float32)
    X = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
    Y = torch.from_numpy(np.ascontiguousarray((y - mean) / std, dtype=np.float32)).to(device)
    W = torch.from_numpy(np.asarray(weights, dtype=np.float32)).to(device)
    model = mlp(X.shape[1], Y.shape[1], settings.hidden).to(device)  # `hidden: []`: linear regression
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)

    def loss_of(rows: np.ndarray) -> torch.Tensor:
        idx = torch.from_numpy(rows).to(device)
        err = ((model(X[idx]) - Y[idx]) ** 2).sum(1)
        return (err * W[idx]).sum() / W[idx].sum()

    def train_epoch() -> float:
        perm = train[rng.permutation(len(train))]
        total = 0.0
        for start in range(0, len(perm), settings.batch_size):
            optimizer.zero_grad()
            loss = loss_of(perm[start : start + settings.batch_size])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * min(settings.batch_size, len(perm) - start)
        return total / max(len(perm), 1)

    best_loss, best_epoch, history = train_early_stopping(
        model, settings.epochs, settings.patience, train_epoch, lambda trained: float(loss_of(val)) if n_val else trained
    )
    model = Unstandardize(model, mean, std).to(device).eval()
    with torch.no_grad():
        rows = val if n_val else train
        pred = model(X[torch.from_numpy(rows).to(device)]).cpu().numpy()
    truth = y[rows]
    r2 = 1.0 - float(((pred - truth) ** 2).sum() / max(((truth - truth.mean(0)) ** 2).sum(), 1e-12))
    info = {
        "regression_best_epoch": best_epoch,
        "regression_epochs_run": len(history),
        # in standardised units (per factor dimension), summed over dimensions
        "regression_val_mse" if n_val else "regression_train_mse": best_loss,
        "regression_val_r2" if n_val else "regression_train_r2": r2,
        "regression_train_items": len(train),
        "regression_val_items": n_val,
    }
    return model, info


class Content2CF(MappedContent):
    def __init__(
        self, data: SplitData, vectors: np.ndarray, missing: np.ndarray, users: torch.Tensor, items: torch.Tensor,
        settings: Content2CFSettings, seed: int, device: torch.device,
    ) -> None:  # fmt: skip
        def fit(x: np.ndarray, y: np.ndarray, listeners: np.ndarray) -> tuple[nn.Module, dict[str, Any]]:
            weights = np.log1p(listeners) if settings.loss == "listeners" else np.ones(len(x))
            return fit_regression(x, y, weights, settings, seed, device)

        super().__init__(data, vectors, missing, users, items, fit, settings.warm_items, device, "content2cf", "regression")


def build(context: RunContext) -> Content2CF:
    """The registry's entry point (content2cf.yaml declares the type)."""
    users, items = context_factors(context, "content2cf")
    return Content2CF(
        context.data, context.vectors.vectors, context.vectors.missing, users, items,
        Content2CFSettings.from_config(context.spec), context.seed, context.device,
    )

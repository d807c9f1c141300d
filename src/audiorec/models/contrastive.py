"""contrastive: a CLIP-style projection of content vectors into the collaborative (iALS)
space, trained with a symmetric InfoNCE loss against the iALS item factors (the follow-up's
Contrastive Multi-Modal approach, Tamm & Aljanaki 2026), and recommending with the iALS user
factors times the projected content.

Why against the item factors and not the user vectors: the item factor is the one target per
track that summarises all of its listeners (one positive per track, every other track of the
batch a negative), in the very space the iALS users score items in; user vectors would give
each track as many positives as listeners, weight popular tracks by their audience, and make
in-batch "negatives" that are often positives of the same user. The iALS side is not
projected (one tower, the content's): a second, learned tower would move the targets out of
the space the users live in.

Why contrastive next to content2cf's regression: InfoNCE asks only that a track's projection
be nearer its own factor than the other tracks' (a ranking of directions, on the unit sphere),
where MSE also spends effort on each factor's exact length and on dimensions that rank
nothing. Scores then need a scale (`scale`): the projection is unit length, and the warm
tracks' mean factor norm puts it back in the factors' units. Within the projected tracks a
constant scale does not change a user's ranking; it matters when they compete with warm
tracks' own factors (`warm_items: own`).

Training follows content2cf: seeded, minibatch Adam over the warm tracks (a train listen and a
vector), a seeded `val_share` held out, the epoch with the lowest held-out loss kept (early stop
after `patience` epochs). The temperature is learned from 0.07 (CLIP's start) and clamped to
[`min_temperature`, 1], or fixed (`learn_temperature: false`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .cf_space import WARM_ITEMS, MappedContent, context_factors, mlp, train_early_stopping
from .data import SplitData

if TYPE_CHECKING:
    from .registry import RunContext

SCALES = ("mean_norm", "unit")


@dataclass(frozen=True)
class ContrastiveSettings:
    hidden: tuple[int, ...] = (256,)
    epochs: int = 200
    batch_size: int = 512
    lr: float = 1e-3
    weight_decay: float = 0.0
    temperature: float = 0.07
    learn_temperature: bool = True
    min_temperature: float = 0.01
    scale: str = "mean_norm"
    warm_items: str = "predicted"
    val_share: float = 0.1
    patience: int = 10

    @classmethod
    def from_config(cls, spec: dict[str, Any]) -> ContrastiveSettings:
        values = {key: spec[key] for key in cls.__dataclass_fields__ if key in spec}
        if "hidden" in values:
            values["hidden"] = tuple(int(h) for h in values["hidden"])
        settings = cls(**values)
        if settings.warm_items not in WARM_ITEMS:
            raise ValueError(f"models.<contrastive>.warm_items must be own or predicted, got {settings.warm_items!r}")
        if settings.scale not in SCALES:
            raise ValueError(f"models.<contrastive>.scale must be one of {SCALES}, got {settings.scale!r}")
        if not 0 < settings.min_temperature <= settings.temperature <= 1:
            raise ValueError(
                f"models.<contrastive>: need 0 < min_temperature ({settings.min_temperature}) <= temperature "
                f"({settings.temperature}) <= 1"
            )
        if not 0 <= settings.val_share < 1:
            raise ValueError(f"models.<contrastive>.val_share must be in [0, 1), got {settings.val_share}")
        if settings.batch_size < 2:
            raise ValueError("models.<contrastive>.batch_size must be at least 2 (in-batch negatives)")
        return settings


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP): row i of `a` and row i of `b` are a positive pair, every other
    row of the other side a negative. Cosine similarities over the temperature; the mean of the
    a->b and b->a cross entropies."""
    logits = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T / temperature
    target = torch.arange(len(a), device=a.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


class Projection(nn.Module):
    """Content -> unit direction in the factor space, times a fixed scale (a buffer), and the
    log-temperature (a parameter when learned)."""

    def __init__(self, net: nn.Module, temperature: float, learn: bool, min_temperature: float) -> None:
        super().__init__()
        self.net = net
        log_t = torch.tensor(math.log(temperature))
        self.log_temperature = nn.Parameter(log_t) if learn else nn.Parameter(log_t, requires_grad=False)
        self.bounds = (math.log(min_temperature), 0.0)
        self.register_buffer("scale", torch.tensor(1.0))

    def temperature(self) -> torch.Tensor:
        return self.log_temperature.clamp(*self.bounds).exp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.net(x), dim=1) * self.scale


def fit_projection(
    x: np.ndarray, y: np.ndarray, settings: ContrastiveSettings, seed: int, device: torch.device
) -> tuple[Projection, dict[str, Any]]:
    """Train content (rows of x) against item factors (rows of y) of the warm tracks with
    in-batch symmetric InfoNCE. The held-out loss is taken over the held-out rows in fixed
    batches of `batch_size` (the same number of negatives as in training). Returns the model
    (eval mode, unit projections times the scale) and what happened (run.json)."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    order = rng.permutation(len(x))
    n_val = round(settings.val_share * len(x)) if len(x) > 3 else 0
    val, train = order[:n_val], order[n_val:]
    X = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)
    Y = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)).to(device)
    model = Projection(mlp(X.shape[1], Y.shape[1], settings.hidden), settings.temperature, settings.learn_temperature,
                       settings.min_temperature).to(device)  # fmt: skip
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trained, lr=settings.lr, weight_decay=settings.weight_decay)

    def batches(rows: np.ndarray) -> list[torch.Tensor]:
        chunks = [rows[s : s + settings.batch_size] for s in range(0, len(rows), settings.batch_size)]
        return [torch.from_numpy(c).to(device) for c in chunks if len(c) >= 2]  # one row has no negative

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        return info_nce(model.net(X[idx]), Y[idx], model.temperature())

    val_batches = batches(val)

    def train_epoch() -> float:
        total, count = 0.0, 0
        for idx in batches(train[rng.permutation(len(train))]):
            optimizer.zero_grad()
            loss = loss_of(idx)
            loss.backward()
            optimizer.step()
            total, count = total + float(loss.detach()) * len(idx), count + len(idx)
        return total / max(count, 1)

    def held_out(trained: float) -> float:
        if not val_batches:
            return trained
        return sum(float(loss_of(b)) * len(b) for b in val_batches) / sum(len(b) for b in val_batches)

    best_loss, best_epoch, history = train_early_stopping(model, settings.epochs, settings.patience, train_epoch, held_out)
    norms = np.linalg.norm(y, axis=1)
    model.scale.fill_(float(norms.mean()) if settings.scale == "mean_norm" else 1.0)
    model.eval()
    rows = val if val_batches else train
    with torch.no_grad():
        z = F.normalize(model.net(X[torch.from_numpy(rows).to(device)]), dim=1)
        sims = z @ F.normalize(Y[torch.from_numpy(rows).to(device)], dim=1).T
        top1 = float((sims.argmax(1) == torch.arange(len(rows), device=device)).float().mean()) if len(rows) else float("nan")
    held = "val" if val_batches else "train"
    info = {
        "contrastive_best_epoch": best_epoch,
        "contrastive_epochs_run": len(history),
        f"contrastive_{held}_loss": best_loss,
        # of the held-out tracks, the share whose projection is nearest its own factor among theirs
        f"contrastive_{held}_top1": top1,
        "contrastive_temperature": float(model.temperature().detach()),
        "contrastive_scale": float(model.scale),
        "contrastive_train_items": len(train),
        "contrastive_val_items": n_val,
    }
    return model, info


class Contrastive(MappedContent):
    def __init__(
        self, data: SplitData, vectors: np.ndarray, missing: np.ndarray, users: torch.Tensor, items: torch.Tensor,
        settings: ContrastiveSettings, seed: int, device: torch.device,
    ) -> None:  # fmt: skip
        def fit(x: np.ndarray, y: np.ndarray, _listeners: np.ndarray) -> tuple[nn.Module, dict[str, Any]]:
            return fit_projection(x, y, settings, seed, device)

        super().__init__(data, vectors, missing, users, items, fit, settings.warm_items, device, "contrastive", "projection")


def build(context: RunContext) -> Contrastive:
    """The registry's entry point (contrastive.yaml declares the type)."""
    users, items = context_factors(context, "contrastive")
    return Contrastive(
        context.data, context.vectors.vectors, context.vectors.missing, users, items,
        ContrastiveSettings.from_config(context.spec), context.seed, context.device,
    )  # fmt: skip

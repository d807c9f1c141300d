"""The training loop every neural recommender shares.

Adam, ReduceLROnPlateau and early stopping all follow one validation metric computed
exactly as the evaluation does (full ranking over the candidates, known items removed, top-K,
`ranking_metrics`) on the val part, so "best epoch" means best on the metric reported.

Resumable: after every epoch the whole training state (weights, optimizer, scheduler,
early-stopping counters, best weights, history) is written atomically to a checkpoint
beside the outputs. Every epoch draws its randomness from generators seeded by
(seed, epoch), never from state carried over from earlier epochs, so a run resumed from
its checkpoint takes exactly the same steps as an uninterrupted one.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..evaluation.metrics import METRICS, ranking_metrics
from ..evaluation.ranking import hit_matrix
from ..io import atomic_path
from ..runtime import progress
from .base import NeuralRecommender, Recommender
from .data import EvalPart, SplitData

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    lr: float = 1e-3
    lr_factor: float = 0.1
    lr_patience: int = 5
    patience: int = 16
    min_delta: float = 0.0
    min_epochs: int = 0
    metric: str = "ndcg"
    k: int = 50

    @classmethod
    def from_config(cls, spec: dict[str, Any], k: int) -> TrainSettings:
        names = [f for f in cls.__dataclass_fields__ if f != "k"]
        return cls(**{n: spec[n] for n in names if n in spec}, k=k)


@dataclass
class FitResult:
    history: list[dict[str, Any]]
    best_epoch: int
    best_value: float
    stopped_early: bool
    resumed_from_epoch: int = 0
    train_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def evaluate_part(model: Recommender, data: SplitData, part: EvalPart, k: int) -> dict[str, float]:
    """Mean metrics@k of the model on one part, ranked like the final recommendations."""
    if len(part.users) == 0:
        raise ValueError(f"the {part.name} part has no users; early stopping needs validation users")
    top = data.rank(model.factors(), part.users, k)
    hits = hit_matrix(top, part.relevant)
    metrics = ranking_metrics(hits, torch.from_numpy(part.n_relevant), k)
    return {name: float(metrics[name].mean()) for name in METRICS}


def epoch_seed(seed: int, epoch: int) -> int:
    """A per-epoch seed for torch's global RNG (dropout), independent of earlier epochs."""
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63 - 1)


def fit(
    model: NeuralRecommender,
    data: SplitData,
    settings: TrainSettings,
    seed: int,
    checkpoint: str | os.PathLike[str] | None = None,
    fingerprint: str = "",
    on_epoch_end: Callable[[int], None] | None = None,
    on_validation: Callable[[int, dict[str, float]], None] | None = None,
) -> FitResult:
    """Train until the validation metric stops improving or the epochs run out; leave the
    model at its best epoch. `on_epoch_end(epoch)` runs after each checkpoint (tests use it
    to simulate a crash); `on_validation(epoch, val_metrics)` gets every epoch's validation
    metrics after it, so a caller may stop the run by raising (hyperparameter search prunes
    hopeless trials this way: audiorec.tuning.objective)."""
    if settings.metric not in METRICS:
        raise ValueError(f"unknown early-stopping metric {settings.metric!r}; choose one of {METRICS}")
    optimizer = torch.optim.Adam(model.optimizer_groups(settings.lr), lr=settings.lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode="max", factor=settings.lr_factor, patience=settings.lr_patience
    )
    state: dict[str, Any] = {
        "epoch": 0,
        "best_epoch": 0,
        "best_value": -float("inf"),
        "best_state": model.saved_state(),
        "bad_epochs": 0,
        "stopped": False,
        "history": [],
    }
    resumed_from = 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.exists():
        saved = torch.load(ckpt, map_location=model.device, weights_only=True)
        if saved.get("fingerprint") == fingerprint:
            model.load_saved_state(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            state = saved["loop"]
            resumed_from = int(state["epoch"])
            log.info("resuming from checkpoint %s after epoch %d", ckpt, resumed_from)
        else:
            log.info("ignoring checkpoint %s: written for other settings or data", ckpt)

    started = time.perf_counter()
    epochs = range(int(state["epoch"]) + 1, settings.epochs + 1)
    for epoch in progress(epochs, total=len(epochs), desc="epochs", unit="epoch"):
        if state["stopped"]:
            break
        t0 = time.perf_counter()
        torch.manual_seed(epoch_seed(seed, epoch))
        lr = optimizer.param_groups[0]["lr"]
        model.train()
        loss = model.train_epoch(optimizer, np.random.default_rng([seed, epoch]))
        if not np.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss} at epoch {epoch}; lower `lr` or check the inputs")
        model.eval()
        with torch.no_grad():
            val = evaluate_part(model, data, data.parts["val"], settings.k)
        value = val[settings.metric]
        warming_up = epoch <= settings.min_epochs  # plateaus before a model "takes off" do not count
        if not warming_up:
            scheduler.step(value)
        if value > state["best_value"] + settings.min_delta:
            state.update(best_epoch=epoch, best_value=value, best_state=model.saved_state(), bad_epochs=0)
        elif not warming_up:
            state["bad_epochs"] += 1
        state["stopped"] = state["bad_epochs"] >= settings.patience
        row = {"epoch": epoch, "loss": loss, **{f"val_{m}": v for m, v in val.items()}, "lr": lr}
        row["seconds"] = time.perf_counter() - t0
        state["history"].append(row)
        state["epoch"] = epoch
        log.info(
            "epoch %d: loss %.5f, val %s@%d %.5f (best %.5f at epoch %d), lr %.2g, %.1fs",
            epoch, loss, settings.metric, settings.k, value, state["best_value"], state["best_epoch"], lr, row["seconds"],
        )
        if ckpt is not None:
            _save_checkpoint(ckpt, fingerprint, model, optimizer, scheduler, state)
        if on_epoch_end is not None:
            on_epoch_end(epoch)
        if on_validation is not None:
            on_validation(epoch, val)
        if state["stopped"]:
            log.info("early stop after epoch %d: no %s improvement for %d epochs", epoch, settings.metric, settings.patience)
    model.load_saved_state(state["best_state"])
    return FitResult(
        history=state["history"],
        best_epoch=int(state["best_epoch"]),
        best_value=float(state["best_value"]),
        stopped_early=bool(state["stopped"]),
        resumed_from_epoch=resumed_from,
        train_seconds=time.perf_counter() - started,
    )


def _save_checkpoint(
    path: Path,
    fingerprint: str,
    model: NeuralRecommender,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau,
    state: dict[str, Any],
) -> None:
    payload = {
        "fingerprint": fingerprint,
        "model": model.saved_state(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "loop": state,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)

"""One trial: train the model on the train part with the trial's settings, score it on val.

The tuning job reads train, val, known (and a cold-item split's catalogue, the backend's
embeddings): never the test part. The split is built with an empty test part, which changes
nothing else: the item index comes from the train part (warm split: val/test tracks are train
tracks) or from the catalogue (cold-item split), exactly as in the final training.

A trial trains like rule `train` (audiorec.models.training.fit: same early stopping and
best-epoch restore, on the model's own `metric`); its value is the tuning metric on val at the
best epoch. Each epoch's tuning metric is reported to the trial, and the median pruner may
stop it (optuna.TrialPruned).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
import torch

from ..models.base import NeuralRecommender
from ..models.data import SplitData, read_part, split_from_frames
from ..models.items import item_vectors_for
from ..models.registry import declaration
from ..models.run import RUN_SELECTION_KEYS, build_model, fingerprint, pick_device
from ..models.training import TrainSettings, evaluate_part, fit
from .space import Param

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class TuningInputs:
    """The files a tuning job reads: no test part."""

    train: PathLike
    val: PathLike
    known: PathLike | None = None
    embeddings: PathLike | None = None
    catalogue: PathLike | None = None


def load_without_test(inputs: TuningInputs) -> SplitData:
    """The split with an empty test part (the test file is never opened)."""
    val = read_part(inputs.val)
    frames = {"train": read_part(inputs.train), "val": val, "test": val.head(0)}
    sources = {"train": str(inputs.train), "val": str(inputs.val), "test": "<test: not read while tuning>"}
    return split_from_frames(
        frames,
        sources,
        None if inputs.catalogue is None else read_part(inputs.catalogue),
        str(inputs.catalogue),
        known=None if inputs.known is None else read_part(inputs.known),
        known_source=str(inputs.known),
    )


@dataclass
class TrialRunner:
    """Trains one model x backend with suggested settings; `__call__` is Optuna's objective."""

    spec: dict[str, Any]
    backend: str
    seed: int
    k: int
    metric: str
    space: tuple[Param, ...]
    inputs: TuningInputs
    model_dirs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.spec = {key: value for key, value in self.spec.items() if key not in RUN_SELECTION_KEYS}
        self.decl = declaration(self.spec["type"], self.model_dirs)
        self.split = load_without_test(self.inputs)
        log.info(
            "%s/%s: tuning on %d users, %d tracks, %d train rows, %d val users (test not read)",
            self.spec["type"], self.backend, self.split.n_users, self.split.n_items, self.split.n_train,
            len(self.split.parts["val"].users),
        )

    def fingerprint(self) -> str:
        """Identity of what the study searches on: the base settings, space, metric and data
        (the budget is left out, so raising it continues the same study)."""
        spec = {**self.spec, "_space": [p.as_list() + [p.name] for p in self.space], "_metric": self.metric}
        vectors = self._vectors(self.spec)
        return fingerprint(spec, self.backend, self.seed, self.k, self.split, vectors)

    def _vectors(self, spec: dict[str, Any]) -> Any:
        if not self.decl.reads_embeddings:
            return None
        embeddings = None if self.inputs.embeddings is None else str(self.inputs.embeddings)
        return item_vectors_for(spec, self.backend, self.split, self.seed, embeddings)

    def settings_of(self, trial: optuna.Trial) -> dict[str, Any]:
        return {p.name: p.suggest(trial) for p in self.space}

    def __call__(self, trial: optuna.Trial) -> float:
        suggested = self.settings_of(trial)
        return self.train(
            {**self.spec, **suggested},
            on_validation=lambda epoch, val: _report(trial, epoch, val[self.metric]),
            record=trial.set_user_attr,
        )

    def train(
        self,
        spec: dict[str, Any],
        on_validation: Callable[[int, dict[str, float]], None] | None = None,
        record: Callable[[str, Any], None] = lambda key, value: None,
    ) -> float:
        """The tuning metric on val of one training with `spec` (the model at its best epoch)."""
        vectors = self._vectors(spec)
        data = self.split if vectors is None or not vectors.n_missing else self.split.for_vectors(~vectors.missing)
        torch.manual_seed(self.seed)
        model = build_model(spec, self.backend, data, vectors, self.seed, model_dirs=self.model_dirs)
        if not isinstance(model, NeuralRecommender):
            with torch.no_grad():
                return evaluate_part(model, data, data.parts["val"], self.k)[self.metric]
        model.to(pick_device(spec.get("device", "auto")))
        result = fit(model, data, TrainSettings.from_config(spec, self.k), self.seed, on_validation=on_validation)
        best = next(row for row in result.history if row["epoch"] == result.best_epoch)
        record("epochs_run", len(result.history))
        record("best_epoch", result.best_epoch)
        return float(best[f"val_{self.metric}"])


def _report(trial: optuna.Trial, epoch: int, value: float) -> None:
    trial.report(value, epoch)
    if trial.should_prune():
        log.info("trial %d pruned after epoch %d (val %.5f below the median of earlier trials)", trial.number, epoch, value)
        raise optuna.TrialPruned()

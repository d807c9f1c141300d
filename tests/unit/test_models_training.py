"""The shared training loop: early stopping, LR reduction, warm-up epochs, best-epoch restore."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _tiny_split import one_thread, split  # noqa: F401 (autouse fixture)
from torch import nn

from audiorec.models import training
from audiorec.models.base import Factors, NeuralRecommender
from audiorec.models.training import TrainSettings, fit


class Counter(NeuralRecommender):
    """Its one weight counts the epochs trained, so the restored state names its epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def train_epoch(self, optimizer, rng, max_steps=None) -> float:
        with torch.no_grad():
            self.weight += 1
        return 1.0

    def steps_per_epoch(self) -> int:
        return 1

    def factors(self) -> Factors:
        return Factors(users=torch.zeros(1, 1), items=torch.zeros(1, 1))


def scripted(monkeypatch, values):
    """Validation metric per epoch from a list, instead of ranking."""
    it = iter(values)
    monkeypatch.setattr(training, "evaluate_part", lambda *a, **k: {m: next(it) if m == "ndcg" else 0.0 for m in training.METRICS})


DATA = split(train=[("u", "t")], val=[("u", "t2")])


def test_stops_after_patience_and_restores_the_best_epoch(monkeypatch):
    scripted(monkeypatch, [0.1, 0.3, 0.2, 0.25, 0.29, 0.5, 0.9])
    model = Counter()
    result = fit(model, DATA, TrainSettings(epochs=7, patience=3, lr_patience=10), seed=0)
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4, 5]  # 3 epochs without beating 0.3
    assert result.stopped_early and result.best_epoch == 2 and result.best_value == 0.3
    assert model.weight.item() == 2.0  # weights of epoch 2, not 5


def test_lr_is_reduced_on_plateau_of_the_validation_metric(monkeypatch):
    scripted(monkeypatch, [0.1, 0.2, 0.2, 0.2, 0.2, 0.2])
    result = fit(Counter(), DATA, TrainSettings(epochs=6, patience=10, lr_patience=1, lr_factor=0.5, lr=1e-2), seed=0)
    assert [r["lr"] for r in result.history] == pytest.approx([1e-2, 1e-2, 1e-2, 1e-2, 5e-3, 5e-3])


def test_min_epochs_hold_off_stopping_and_lr_reduction(monkeypatch):
    values = [0.1, 0.05, 0.05, 0.05, 0.05, 0.4, 0.3]
    scripted(monkeypatch, values)
    result = fit(Counter(), DATA, TrainSettings(epochs=7, patience=2, lr_patience=0, min_epochs=5), seed=0)
    assert len(result.history) == 7 and result.best_epoch == 6
    assert all(r["lr"] == 1e-3 for r in result.history[:6])
    scripted(monkeypatch, values)
    assert len(fit(Counter(), DATA, TrainSettings(epochs=7, patience=2), seed=0).history) == 3


def test_non_finite_loss_is_an_error(monkeypatch):
    scripted(monkeypatch, [0.1])
    model = Counter()
    monkeypatch.setattr(model, "train_epoch", lambda *a, **k: float("nan"))
    with pytest.raises(FloatingPointError, match="lr"):
        fit(model, DATA, TrainSettings(epochs=1), seed=0)


def test_unknown_metric_is_an_error():
    with pytest.raises(ValueError, match="auc"):
        fit(Counter(), DATA, TrainSettings(epochs=1, metric="auc"), seed=0)


def test_epoch_seeds_differ_per_epoch_and_seed():
    seeds = {training.epoch_seed(s, e) for s in range(3) for e in range(1, 50)}
    assert len(seeds) == 3 * 49
    assert np.all(np.array(list(seeds)) >= 0)


def test_on_validation_sees_every_epochs_metrics_and_can_stop_the_run(monkeypatch):
    """The hook hyperparameter search prunes with (audiorec.tuning.objective)."""
    scripted(monkeypatch, [0.1, 0.2, 0.3, 0.4])
    seen = []

    class Stop(Exception):
        pass

    def hook(epoch, val):
        seen.append((epoch, val["ndcg"]))
        if epoch == 2:
            raise Stop

    model = Counter()
    with pytest.raises(Stop):
        fit(model, DATA, TrainSettings(epochs=4, patience=10), seed=0, on_validation=hook)
    assert seen == [(1, 0.1), (2, 0.2)] and model.weight.item() == 2.0

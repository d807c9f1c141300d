"""The optional MLP probe (`classifier: mlp`): it reads labels a linear probe cannot."""

from __future__ import annotations

import numpy as np
import pytest

from audiorec.probes.fit import BasisCache, ProbeSettings, predictions_path, run_probe
from audiorec.probes.labels import Task
from audiorec.probes.metrics import scores


def _xor(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two informative coordinates whose signs' XOR is the label (no linear function of the
    vector separates it: each coordinate alone is uncorrelated with it), plus noise units."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 6))
    x[:, :2] += np.sign(x[:, :2]) * 0.2  # a margin around the axes
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(np.int64)
    groups = np.repeat(np.arange(n // 4), 4).astype(str)  # artists of 4 tracks
    return x, y, groups


def test_mlp_learns_an_xor_label_the_linear_probe_cannot() -> None:
    x, y, groups = _xor(400, seed=0)
    task = Task("xor", "single", "x", [str(i) for i in range(len(y))], y, ["same", "differ"])
    accuracy = {}
    for classifier in ("logistic", "mlp"):
        settings = ProbeSettings(folds=4, inner_folds=2, alphas=(0.1, 1.0), classifier=classifier, mlp_hidden=32)
        result = run_probe(x, task, groups, settings)
        accuracy[classifier] = scores("single", np.eye(2)[y], result.pred)["accuracy"]
    assert accuracy["logistic"] < 0.65, accuracy  # chance is 0.5
    assert accuracy["mlp"] > 0.9, accuracy


def test_mlp_regression_and_multilabel_learn_a_product_and_are_seeded() -> None:
    x, y, _ = _xor(300, seed=1)
    x_te, y_te, _ = _xor(200, seed=2)
    settings = ProbeSettings(classifier="mlp", mlp_hidden=32, alphas=(0.1,))
    value = (x[:, :1] * x[:, 1:2]) * 3 + 10  # a product: no linear trend in either coordinate
    pred = predictions_path("regression", x, value[:, 0], value, x_te, (0.1,), settings)[0.1]
    r2 = scores("regression", x_te[:, :1] * x_te[:, 1:2] * 3 + 10, pred)["r2"]
    linear = predictions_path("regression", x, value[:, 0], value, x_te, (0.1,), ProbeSettings())[0.1]
    assert r2 > 0.8 and scores("regression", x_te[:, :1] * x_te[:, 1:2] * 3 + 10, linear)["r2"] < 0.1
    both = np.stack([y, 1 - y], axis=1)
    first = predictions_path("multilabel", x, both, both.astype(float), x_te, (0.1,), settings, BasisCache())[0.1]
    again = predictions_path("multilabel", x, both, both.astype(float), x_te, (0.1,), settings)[0.1]
    np.testing.assert_array_equal(first, again)  # seeded: the same fit twice
    assert scores("multilabel", np.stack([y_te, 1 - y_te], axis=1), first)["roc_auc"] > 0.9


def test_mlp_predicts_the_only_class_of_a_one_class_training_side() -> None:
    x = np.random.default_rng(3).standard_normal((20, 4))
    y = np.full(20, 2)
    pred = predictions_path("single", x, y, np.eye(3)[y], x[:5], (1.0,), ProbeSettings(classifier="mlp"))[1.0]
    assert (pred[:, 2] == 1.0).all() and (pred[:, :2] == 0).all()


@pytest.mark.parametrize("kind", ["single", "multilabel"])
def test_mlp_probabilities_sum_like_their_kind(kind: str) -> None:
    x, y, _ = _xor(120, seed=4)
    truth = np.eye(2)[y] if kind == "single" else np.stack([y, y], axis=1).astype(float)
    pred = predictions_path(kind, x, y if kind == "single" else truth.astype(int), truth, x[:10], (1.0,), ProbeSettings(classifier="mlp", mlp_hidden=8))[1.0]
    assert pred.shape == (10, 2) and ((pred >= 0) & (pred <= 1)).all()
    if kind == "single":
        np.testing.assert_allclose(pred.sum(axis=1), 1.0)

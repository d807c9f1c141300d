"""Linear probes with group-disjoint cross-validation.

A probe asks how linearly a label can be read off a frozen vector, as MARBLE and HEAR do:
standardise the vectors (statistics of the training side only), fit a linear model and
choose its regularisation strength by an inner cross-validation on the training side.
Outer folds are group-disjoint (scikit-learn's `GroupKFold`, shuffled with the seed):
every track of an artist (or album) is on one side, so a probe cannot score by
recognising the artist of a track it saw. Each track gets exactly one out-of-fold
prediction, which the report bootstraps over.

Models: regression is ridge. Classification is `logistic` (scikit-learn's
`LogisticRegression`, multinomial for single-label, one per label for multi-label) or
`ridge` (least squares on the one-hot / 0-1 targets, scikit-learn's `RidgeClassifier`
rule; its scores rank as well as probabilities for every metric here). Ridge solutions for
every strength come from one SVD of the training side (scikit-learn's `solver="svd"`
formula, checked against it in tests), so the inner CV costs one decomposition per fold;
logistic fits are warm-started along the strengths, strongest first.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

from .labels import Kind, Task
from .metrics import PRIMARY, scores

log = logging.getLogger(__name__)

Classifier = Literal["logistic", "ridge"]


@dataclass(frozen=True)
class ProbeSettings:
    """The `probes:` config section's fitting keys (defaults as in the schema)."""

    folds: int = 5
    inner_folds: int = 3
    seed: int = 0
    # regularisation strengths tried by the inner CV: ridge's alpha, logistic's 1/C
    alphas: tuple[float, ...] = (1.0, 10.0, 100.0, 1000.0)
    classifier: Classifier = "logistic"
    max_iter: int = 300


@dataclass
class ProbeResult:
    """Out-of-fold predictions of one task on one vector set, and what each fold chose."""

    task: Task
    fold: np.ndarray  # [N] outer fold of each track
    pred: np.ndarray  # [N, C] out-of-fold predictions (class probabilities / scores / value)
    fold_scores: list[dict[str, float]] = field(default_factory=list)  # per outer fold
    alphas: list[float] = field(default_factory=list)  # chosen per outer fold


def truth_matrix(task: Task) -> np.ndarray:
    """The task's labels as [N, C] (one-hot for single, one column for regression)."""
    if task.kind == "single":
        return np.eye(len(task.classes), dtype=np.float64)[task.y]
    if task.kind == "regression":
        return np.asarray(task.y, dtype=np.float64)[:, None]
    return np.asarray(task.y, dtype=np.float64)


def ridge_path(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, alphas: tuple[float, ...]) -> dict[float, np.ndarray]:
    """Ridge predictions [n_te, C] for every alpha on standardised inputs, from one SVD.

    With centred X = U S Vᵀ, the ridge weights are V diag(s / (s² + α)) Uᵀ (Y − Ȳ) and the
    intercept Ȳ (scikit-learn's `Ridge(solver="svd")` on the same standardised data)."""
    scaler = StandardScaler().fit(x_tr)
    a, b = scaler.transform(x_tr), scaler.transform(x_te)
    y_mean = y_tr.mean(axis=0)
    u, s, vt = np.linalg.svd(a, full_matrices=False)
    uty = u.T @ (y_tr - y_mean)  # [r, C]
    b_v = b @ vt.T  # [n_te, r]
    out = {}
    for alpha in alphas:
        d = s / (s**2 + alpha)
        out[float(alpha)] = b_v @ (d[:, None] * uty) + y_mean
    return out


def _logistic_path(kind: Kind, x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, n_classes: int, alphas: tuple[float, ...], settings: ProbeSettings) -> dict[float, np.ndarray]:
    """Class probabilities [n_te, C] for every alpha, warm-started from the strongest."""
    scaler = StandardScaler().fit(x_tr)
    a, b = scaler.transform(x_tr), scaler.transform(x_te)
    order = sorted((float(v) for v in alphas), reverse=True)
    out = {alpha: np.zeros((len(b), n_classes)) for alpha in order}
    columns = [None] if kind == "single" else list(range(n_classes))
    for column in columns:
        target = y_tr if column is None else y_tr[:, column]
        present = np.unique(target)
        if len(present) < 2:  # one class on the training side: predict it
            for alpha in order:
                if column is None:
                    out[alpha][:, int(present[0])] = 1.0
                else:
                    out[alpha][:, column] = float(present[0])
            continue
        model = LogisticRegression(warm_start=True, max_iter=settings.max_iter, random_state=settings.seed)
        for alpha in order:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.set_params(C=1.0 / alpha).fit(a, target)
            proba = model.predict_proba(b)
            if column is None:
                out[alpha][:, model.classes_] = proba
            else:
                out[alpha][:, column] = proba[:, 1]
    return out


def predictions_path(kind: Kind, x_tr: np.ndarray, y_tr: np.ndarray, truth_tr: np.ndarray, x_te: np.ndarray, alphas: tuple[float, ...], settings: ProbeSettings) -> dict[float, np.ndarray]:
    """Predictions [n_te, C] for every strength: ridge on `truth_tr`, or logistic on `y_tr`."""
    if kind == "regression" or settings.classifier == "ridge":
        return ridge_path(x_tr, truth_tr, x_te, alphas)
    return _logistic_path(kind, x_tr, y_tr, x_te, truth_tr.shape[1], alphas, settings)


def group_splits(groups: np.ndarray, n_splits: int, seed: int, where: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Shuffled, seeded group-disjoint folds (fewer when there are fewer groups)."""
    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError(f"{where}: all tracks are in one artist/album group; group-disjoint folds need at least 2")
    k = min(n_splits, n_groups)
    if k < n_splits:
        log.warning("%s: only %d groups, so %d folds instead of %d", where, n_groups, k, n_splits)
    splitter = GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(groups)), groups=groups))


def choose_alpha(kind: Kind, x: np.ndarray, y: np.ndarray, truth: np.ndarray, groups: np.ndarray, settings: ProbeSettings, seed: int) -> float:
    """The strength with the best pooled inner-CV primary metric; the strongest on ties."""
    if len(settings.alphas) == 1:
        return float(settings.alphas[0])
    pooled = {float(a): np.zeros_like(truth) for a in settings.alphas}
    for tr, te in group_splits(groups, settings.inner_folds, seed, "inner probe folds"):
        for alpha, pred in predictions_path(kind, x[tr], y[tr], truth[tr], x[te], settings.alphas, settings).items():
            pooled[alpha][te] = pred
    best, best_score = max(pooled), -np.inf
    for alpha in sorted(pooled, reverse=True):
        score = scores(kind, truth, pooled[alpha])[PRIMARY[kind]]
        if np.isfinite(score) and score > best_score + 1e-12:
            best, best_score = alpha, score
    return best


def run_probe(x: np.ndarray, task: Task, groups: np.ndarray, settings: ProbeSettings = ProbeSettings()) -> ProbeResult:
    """Out-of-fold predictions of `task` from vectors `x` (rows in `task.track_ids` order)."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) != len(task.track_ids) or len(groups) != len(x):
        raise ValueError(f"task {task.name}: {len(x)} vectors, {len(task.track_ids)} labels, {len(groups)} groups")
    truth = truth_matrix(task)
    y = task.y
    result = ProbeResult(task, np.full(len(x), -1, dtype=np.int64), np.zeros_like(truth))
    for f, (tr, te) in enumerate(group_splits(groups, settings.folds, settings.seed, f"task {task.name}")):
        alpha = choose_alpha(task.kind, x[tr], y[tr], truth[tr], groups[tr], settings, settings.seed + 1 + f)
        result.pred[te] = predictions_path(task.kind, x[tr], y[tr], truth[tr], x[te], (alpha,), settings)[alpha]
        result.fold[te] = f
        result.alphas.append(alpha)
        result.fold_scores.append(scores(task.kind, truth[te], result.pred[te]))
    return result

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
rule; its scores rank as well as probabilities for every metric here). `mlp` is the
optional non-linear probe for every task (`mlp.py`).

Speed (issue 17): every fit starts from one thin SVD of the standardised training rows,
A = U S Vᵀ, shared through a `BasisCache` by every task and every strength that trains on
the same rows (the tasks of a dataset label the same tracks, so they get the same folds).
Ridge predictions for every strength follow from it in closed form (scikit-learn's
`solver="svd"` formula, checked against it in tests). Logistic regression is fitted on the
rotated rows A V = U S (r = rank(A) ≤ min(n, d) columns) instead of A: the L2-penalised
optimum lies in the row space of A, and V is an isometry onto it, so the optimum and its
predictions are the same (up to the solver's tolerance; tested against scikit-learn on the
raw rows) at a fraction of the cost when r < d; where r = d it is fitted on A itself,
as it would be without the decomposition, because a rotation would save nothing and only
move the solver's stopping point (its test on the largest gradient entry depends on the
coordinates). Logistic fits use scikit-learn's newton-cg solver (fewer, exact-Hessian steps:
less CPU than lbfgs here, and closer to the optimum at the same tolerance), warm-started
along the strengths, strongest first. Constant units are left out of the SVD (zero columns
add nothing to the row space). The job runs its outer folds in parallel (`workers.py`).
"""

from __future__ import annotations

import logging
import time
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
from .mlp import mlp_path

log = logging.getLogger(__name__)

Classifier = Literal["logistic", "ridge", "mlp"]


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
    mlp_hidden: int = 128  # hidden units of `classifier: mlp` (mlp.py)
    # the logistic solver's stopping tolerance (scikit-learn's default; not a config key): tests
    # tighten it to compare the rotated fit with the raw one at the optimum itself
    tol: float = 1e-4
    # scikit-learn's LogisticRegression solver (not a config key): newton-cg reaches the same
    # optimum in ~10 Newton steps instead of lbfgs's 30-300 quasi-Newton ones, ~25 % less CPU on
    # the MusiCNN job, and stops closer to the optimum at the same `tol` (docs/probes.md)
    solver: str = "newton-cg"


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


@dataclass(frozen=True)
class Basis:
    """One training side's standardised thin SVD and its test rows in the same coordinates.

    Training rows standardised with their own statistics are A = U S Vᵀ; `z_tr` = U S and
    `z_te` = B V are the rows rotated onto A's row space, where every L2-penalised linear
    fit's weights lie."""

    u: np.ndarray  # [n_tr, r]
    s: np.ndarray  # [r]
    z_te: np.ndarray  # [n_te, r]
    # the standardised rows themselves (training, test) where they span every direction (r = d):
    # rotating them would save nothing and only move the solver's coordinate-dependent stopping point
    full_rank: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def z_tr(self) -> np.ndarray:
        return self.u * self.s


def basis(x_tr: np.ndarray, x_te: np.ndarray) -> Basis:
    """Standardise on the training side (as `StandardScaler`), decompose, rotate both sides."""
    scaler = StandardScaler().fit(x_tr)
    a, b = scaler.transform(x_tr), scaler.transform(x_te)
    # units constant on the training rows (dead units: 541 of MusiCNN's 753 pooled ones) are
    # (numerically) zero columns of A: they add nothing to A's row space, so the SVD of the other
    # columns has the same singular values and left vectors, at a fraction of the cost
    varying = np.ptp(x_tr, axis=0) > 0 if len(x_tr) else np.ones(a.shape[1], dtype=bool)
    if not varying.any():
        varying[:1] = True
    u, s, vt = np.linalg.svd(a[:, varying], full_matrices=False)
    # drop directions the rows do not span (numpy's matrix_rank cut-off, on A's shape): linear
    # dependencies contribute s/(s²+α) ≈ 0 to ridge and carry no logistic weight, but would cost
    # every fit a column
    keep = s > s[:1].max(initial=0.0) * max(a.shape) * np.finfo(np.float64).eps
    keep[:1] = True  # at least one (all-zero) column, so that a fit on constant rows still runs
    full = keep.all() and len(s) == a.shape[1]
    return Basis(u[:, keep], s[keep], b[:, varying] @ vt[keep].T, (a, b) if full else None)


class BasisCache:
    """Bases by the content of their (training, test) rows, so that tasks and strengths on the
    same rows decompose them once. Keyed by content rather than fold indices because each task
    aligns its own copy of the vectors: a cheap fingerprint (shapes, first and last rows) finds
    the candidate, an exact comparison of the rows confirms it (hashing every byte cost more
    than the SVDs it saved). Clear it between vector sets to bound memory."""

    def __init__(self) -> None:
        self._bases: dict[tuple, list[tuple[np.ndarray, np.ndarray, Basis]]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, x_tr: np.ndarray, x_te: np.ndarray) -> Basis:
        key = tuple((part.shape, part.dtype.str, part[:1].tobytes(), part[-1:].tobytes()) for part in (x_tr, x_te))
        entries = self._bases.setdefault(key, [])
        for seen_tr, seen_te, found in entries:
            if np.array_equal(seen_tr, x_tr) and np.array_equal(seen_te, x_te):
                self.hits += 1
                return found
        self.misses += 1
        found = basis(x_tr, x_te)
        entries.append((x_tr, x_te, found))
        return found

    def clear(self) -> None:
        self._bases.clear()


def _basis(x_tr: np.ndarray, x_te: np.ndarray, cache: BasisCache | None) -> Basis:
    return cache.get(x_tr, x_te) if cache is not None else basis(x_tr, x_te)


def ridge_path(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, alphas: tuple[float, ...], cache: BasisCache | None = None) -> dict[float, np.ndarray]:
    """Ridge predictions [n_te, C] for every alpha on standardised inputs, from one SVD.

    With centred X = U S Vᵀ, the ridge weights are V diag(s / (s² + α)) Uᵀ (Y − Ȳ) and the
    intercept Ȳ (scikit-learn's `Ridge(solver="svd")` on the same standardised data)."""
    fit = _basis(x_tr, x_te, cache)
    y_mean = y_tr.mean(axis=0)
    uty = fit.u.T @ (y_tr - y_mean)  # [r, C]
    out = {}
    for alpha in alphas:
        d = fit.s / (fit.s**2 + alpha)
        out[float(alpha)] = fit.z_te @ (d[:, None] * uty) + y_mean
    return out


def _logistic_path(kind: Kind, x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, n_classes: int, alphas: tuple[float, ...], settings: ProbeSettings, cache: BasisCache | None = None) -> dict[float, np.ndarray]:
    """Class probabilities [n_te, C] for every alpha, warm-started from the strongest.

    Fitted on the rotated rows `Basis.z_tr` where the training rows span fewer than d
    directions (see the module docstring): same optimum as on the standardised rows, r = rank
    columns instead of d; on the standardised rows themselves otherwise (exactly as before)."""
    fit = _basis(x_tr, x_te, cache)
    a, b = fit.full_rank if fit.full_rank is not None else (fit.z_tr, fit.z_te)
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
        model = LogisticRegression(warm_start=True, max_iter=settings.max_iter, tol=settings.tol, solver=settings.solver, random_state=settings.seed)
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


def predictions_path(kind: Kind, x_tr: np.ndarray, y_tr: np.ndarray, truth_tr: np.ndarray, x_te: np.ndarray, alphas: tuple[float, ...], settings: ProbeSettings, cache: BasisCache | None = None) -> dict[float, np.ndarray]:
    """Predictions [n_te, C] for every strength: ridge on `truth_tr`, logistic on `y_tr`, or
    (`classifier: mlp`, every kind) the small MLP of `mlp.py`."""
    if settings.classifier == "mlp":
        fit = _basis(x_tr, x_te, cache)
        a, b = fit.full_rank if fit.full_rank is not None else (fit.z_tr, fit.z_te)
        return mlp_path(kind, a, b, y_tr, truth_tr, alphas, settings.mlp_hidden, settings.max_iter, settings.seed)
    if kind == "regression" or settings.classifier == "ridge":
        return ridge_path(x_tr, truth_tr, x_te, alphas, cache)
    return _logistic_path(kind, x_tr, y_tr, x_te, truth_tr.shape[1], alphas, settings, cache)


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


def choose_alpha(kind: Kind, x: np.ndarray, y: np.ndarray, truth: np.ndarray, groups: np.ndarray, settings: ProbeSettings, seed: int, cache: BasisCache | None = None) -> float:
    """The strength with the best pooled inner-CV primary metric; the strongest on ties."""
    if len(settings.alphas) == 1:
        return float(settings.alphas[0])
    pooled = {float(a): np.zeros_like(truth) for a in settings.alphas}
    for tr, te in group_splits(groups, settings.inner_folds, seed, "inner probe folds"):
        for alpha, pred in predictions_path(kind, x[tr], y[tr], truth[tr], x[te], settings.alphas, settings, cache).items():
            pooled[alpha][te] = pred
    best, best_score = max(pooled), -np.inf
    for alpha in sorted(pooled, reverse=True):
        score = scores(kind, truth, pooled[alpha])[PRIMARY[kind]]
        if np.isfinite(score) and score > best_score + 1e-12:
            best, best_score = alpha, score
    return best


@dataclass(frozen=True)
class FoldResult:
    """One outer fold of one task: the strength its inner CV chose, its test predictions and scores."""

    alpha: float
    pred: np.ndarray  # [n_te, C]
    scores: dict[str, float]
    seconds: float = 0.0


def outer_splits(task: Task, groups: np.ndarray, settings: ProbeSettings) -> list[tuple[np.ndarray, np.ndarray]]:
    """The task's outer folds (a function of its groups and the seed only: every worker agrees)."""
    return group_splits(groups, settings.folds, settings.seed, f"task {task.name}")


def probe_fold(x: np.ndarray, task: Task, truth: np.ndarray, groups: np.ndarray, split: tuple[np.ndarray, np.ndarray], f: int, settings: ProbeSettings, cache: BasisCache | None = None) -> FoldResult:
    """Outer fold `f` of `task`: choose the strength on its training side, predict its test side.

    Independent of every other fold and task (the unit the probe job spreads over workers)."""
    started = time.perf_counter()
    tr, te = split
    y = task.y
    alpha = choose_alpha(task.kind, x[tr], y[tr], truth[tr], groups[tr], settings, settings.seed + 1 + f, cache)
    pred = predictions_path(task.kind, x[tr], y[tr], truth[tr], x[te], (alpha,), settings, cache)[alpha]
    return FoldResult(alpha, pred, scores(task.kind, truth[te], pred), time.perf_counter() - started)


def assemble(task: Task, splits: list[tuple[np.ndarray, np.ndarray]], folds: list[FoldResult]) -> ProbeResult:
    """The task's out-of-fold predictions from its folds' results (in fold order)."""
    truth = truth_matrix(task)
    result = ProbeResult(task, np.full(len(truth), -1, dtype=np.int64), np.zeros_like(truth))
    for f, ((_, te), fold) in enumerate(zip(splits, folds, strict=True)):
        result.pred[te] = fold.pred
        result.fold[te] = f
        result.alphas.append(fold.alpha)
        result.fold_scores.append(fold.scores)
    return result


def run_probe(x: np.ndarray, task: Task, groups: np.ndarray, settings: ProbeSettings = ProbeSettings(), cache: BasisCache | None = None) -> ProbeResult:
    """Out-of-fold predictions of `task` from vectors `x` (rows in `task.track_ids` order).

    Pass one `cache` to every task probed on the same vectors: tasks on the same tracks share
    their folds, hence their decompositions."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) != len(task.track_ids) or len(groups) != len(x):
        raise ValueError(f"task {task.name}: {len(x)} vectors, {len(task.track_ids)} labels, {len(groups)} groups")
    truth = truth_matrix(task)
    splits = outer_splits(task, groups, settings)
    return assemble(task, splits, [probe_fold(x, task, truth, groups, split, f, settings, cache) for f, split in enumerate(splits)])

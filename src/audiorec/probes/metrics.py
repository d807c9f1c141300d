"""Probe scores per task kind, from true labels and (out-of-fold) predictions.

- multilabel: macro ROC-AUC and macro PR-AUC (average precision) over the labels that have
  both positive and negative tracks in the scored set (a label without both has no AUC);
- single: accuracy and balanced accuracy (the mean per-class recall, which a majority-class
  guess cannot inflate);
- regression: R² and Spearman's rank correlation.

`truth` and `pred` are [N, C] for every kind (one-hot / class probabilities for single,
0/1 / scores for multilabel, one column for regression), the layout the probe job stores,
so the report can bootstrap over tracks with one function.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    r2_score,
    roc_auc_score,
)

from .labels import Kind

METRICS: dict[str, tuple[str, ...]] = {
    "multilabel": ("roc_auc", "pr_auc"),
    "single": ("accuracy", "balanced_accuracy"),
    "regression": ("r2", "spearman"),
}
#: the metric that picks the regularisation and leads the report, per kind
PRIMARY: dict[str, str] = {"multilabel": "roc_auc", "single": "accuracy", "regression": "r2"}
#: what a guess without information scores (the report's "above chance" line); None: depends on the data
CHANCE: dict[str, float | None] = {"roc_auc": 0.5, "pr_auc": None, "accuracy": None, "balanced_accuracy": None, "r2": 0.0, "spearman": 0.0}


def _scorable(truth: np.ndarray) -> np.ndarray:
    """Labels with at least one positive and one negative track."""
    positives = truth.sum(axis=0)
    return (positives > 0) & (positives < truth.shape[0])


def scores(kind: Kind, truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Every metric of `kind` (NaN where the scored set cannot define it, e.g. one class only)."""
    truth = np.asarray(truth, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if truth.ndim == 1:
        truth = truth[:, None]
    if pred.ndim == 1:
        pred = pred[:, None]
    if truth.shape != pred.shape:
        raise ValueError(f"truth {truth.shape} and predictions {pred.shape} differ in shape")
    if kind == "multilabel":
        ok = _scorable(truth)
        if not ok.any():
            return {"roc_auc": float("nan"), "pr_auc": float("nan")}
        return {
            "roc_auc": float(roc_auc_score(truth[:, ok], pred[:, ok], average="macro")),
            "pr_auc": float(average_precision_score(truth[:, ok], pred[:, ok], average="macro")),
        }
    if kind == "single":
        y, guess = truth.argmax(axis=1), pred.argmax(axis=1)
        return {
            "accuracy": float((y == guess).mean()),
            # over the classes present in truth (sklearn's definition); a predicted absent class counts as a miss
            "balanced_accuracy": float(balanced_accuracy_score(y, guess)),
        }
    if kind == "regression":
        y, guess = truth[:, 0], pred[:, 0]
        constant = np.ptp(y) == 0 or np.ptp(guess) == 0
        return {
            "r2": float(r2_score(y, guess)) if np.ptp(y) > 0 else float("nan"),
            "spearman": float("nan") if constant else float(spearmanr(y, guess).statistic),
        }
    raise ValueError(f"unknown task kind {kind!r}; one of {tuple(METRICS)}")

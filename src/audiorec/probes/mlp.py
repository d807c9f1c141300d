"""The optional non-linear probe (`classifier: mlp`): one hidden layer, scikit-learn's MLP.

A linear probe asks whether a label can be *read off* a vector; a small MLP asks whether it is
in the vector at all, in a form one hidden layer can untangle (MARBLE and HEAR report both).
`MLPClassifier` (softmax for single-label, one sigmoid per label for multi-label) or
`MLPRegressor` (on the standardised target), `hidden` ReLU units, Adam (step 0.01), seeded, stopped early
on a held-out tenth of the training side (stratified for single-label). The strengths of
`probes.alphas` are its L2 penalty: scikit-learn adds alpha·‖W‖²/(2n) to the mean loss,
i.e. alpha·‖W‖²/2 to the summed loss, the same scale as logistic regression's 1/C and ridge's
alpha, so one list serves every classifier and the inner CV chooses among them as for the
linear probes. Inputs are the probe's standardised rows (or their rotation onto the rows'
span, `fit.Basis`, where that is narrower: the penalised optimum lies in that span too).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier, MLPRegressor

from .labels import Kind

#: what early stopping holds out of the training side (scikit-learn's default)
VALIDATION_FRACTION = 0.1
#: Adam's step: scikit-learn's default (0.001) stops early before an XOR-like label is learnt on
#: a few hundred tracks (10 epochs without improvement come after ~15 epochs of 2 batches)
LEARNING_RATE = 0.01


def _model(kind: Kind, alpha: float, hidden: int, max_iter: int, seed: int, early_stopping: bool) -> MLPClassifier | MLPRegressor:
    cls = MLPRegressor if kind == "regression" else MLPClassifier
    return cls(hidden_layer_sizes=(hidden,), alpha=alpha, max_iter=max_iter, early_stopping=early_stopping,
               validation_fraction=VALIDATION_FRACTION, n_iter_no_change=10, learning_rate_init=LEARNING_RATE,
               random_state=seed)


def mlp_path(kind: Kind, a: np.ndarray, b: np.ndarray, y_tr: np.ndarray, truth_tr: np.ndarray, alphas: tuple[float, ...],
             hidden: int, max_iter: int, seed: int) -> dict[float, np.ndarray]:
    """Predictions [n_te, C] of test rows `b` for every strength, from training rows `a`:
    class probabilities (single), label probabilities (multi-label) or the value (regression)."""
    n_out = truth_tr.shape[1]
    out = {float(alpha): np.zeros((len(b), n_out)) for alpha in alphas}
    if kind == "single":
        present, counts = np.unique(y_tr, return_counts=True)
        if len(present) < 2:  # one class on the training side: predict it
            for pred in out.values():
                pred[:, int(present[0])] = 1.0
            return out
        # a stratified hold-out needs two tracks of every class
        early = bool(counts.min() >= 2 and len(y_tr) * VALIDATION_FRACTION >= len(present))
        target = y_tr
    elif kind == "multilabel":
        early, target = True, truth_tr
    else:
        mean, sd = truth_tr.mean(axis=0), truth_tr.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        early, target = True, ((truth_tr - mean) / sd)[:, 0]
    for alpha, pred in out.items():
        model = _model(kind, alpha, hidden, max_iter, seed, early)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(a, target)
        if kind == "single":
            pred[:, model.classes_] = model.predict_proba(b)
        elif kind == "multilabel":
            pred[:] = model.predict_proba(b)
        else:
            pred[:, 0] = model.predict(b) * sd[0] + mean[0]
    return out

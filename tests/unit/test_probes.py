"""MIR probes: labels from dataset files, group-disjoint folds, the ridge path, metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from audiorec.probes.fit import BasisCache, basis, ProbeSettings, group_splits, predictions_path, ridge_path, run_probe, truth_matrix
from audiorec.probes.labels import LabelSettings, Task, load_tasks, track_groups
from audiorec.probes.metrics import scores


def _write(path: Path, rows: list[list[str]]) -> None:
    path.write_text("\n".join("\t".join(r) for r in rows) + "\n")


def test_music4all_files_give_each_kind_and_missing_columns_are_skipped(tmp_path: Path) -> None:
    ids = [f"t{i}" for i in range(12)]
    _write(tmp_path / "id_genres.tsv", [["id", "genres"]] + [[t, "rock,pop" if i % 2 else "jazz"] for i, t in enumerate(ids)])
    _write(tmp_path / "id_metadata.tsv", [["id", "key", "tempo"]] + [[t, str(i % 2), str(100 + i)] for i, t in enumerate(ids)])
    tasks = {t.name: t for t in load_tasks(tmp_path, "music4all-onion", ids, LabelSettings(min_count=2))}
    assert set(tasks) == {"genres", "key", "tempo"}  # mode, energy, ... absent: skipped
    genres = tasks["genres"]
    assert genres.kind == "multilabel" and genres.classes == ["jazz", "pop", "rock"]
    assert genres.y[1].tolist() == [0, 1, 1] and genres.y[0].tolist() == [1, 0, 0]
    assert tasks["key"].kind == "single" and tasks["key"].y.tolist() == [i % 2 for i in range(12)]
    assert tasks["tempo"].kind == "regression" and tasks["tempo"].y.tolist() == [100.0 + i for i in range(12)]
    with pytest.raises(ValueError, match="valence"):
        load_tasks(tmp_path, "music4all-onion", ids, LabelSettings(tasks=("valence",)))


def test_groups_are_artists_else_albums_else_tracks(tmp_path: Path) -> None:
    _write(tmp_path / "id_information.tsv", [["id", "artist", "album_name"], ["a", "X", "p"], ["b", "X", "q"], ["c", "", "q"]])
    groups, kind = track_groups(tmp_path, ["a", "b", "c", "d"])
    assert kind == "artist"
    assert groups.tolist() == ["artist:X", "artist:X", "album_name:q", "track:d"]


def test_outer_folds_never_split_a_group_and_cover_every_track() -> None:
    groups = np.repeat([f"g{i}" for i in range(17)], 3)
    seen = np.zeros(len(groups), dtype=int)
    for tr, te in group_splits(groups, 5, seed=3, where="test"):
        assert not set(groups[tr]) & set(groups[te])
        seen[te] += 1
    assert (seen == 1).all()


@pytest.mark.parametrize("n, d", [(40, 7), (12, 30)])  # more rows than columns, and fewer
def test_ridge_path_equals_sklearn_ridge(n: int, d: int) -> None:
    rng = np.random.default_rng(0)
    x, y, x_te = rng.standard_normal((n, d)) * 3 + 1, rng.standard_normal((n, 2)), rng.standard_normal((9, d))
    x[:, 1], x[:, 2] = 4.0, x[:, 0] - x[:, 3]  # a dead unit and a dependent one: fewer directions kept
    cache = BasisCache()
    paths = ridge_path(x, y, x_te, (0.5, 20.0), cache)
    scaler = StandardScaler().fit(x)
    for alpha, pred in paths.items():
        expected = Ridge(alpha=alpha).fit(scaler.transform(x), y).predict(scaler.transform(x_te))
        np.testing.assert_allclose(pred, expected, rtol=1e-8, atol=1e-10)
    # a second target on the same rows reuses the decomposition and is still sklearn's
    y2 = rng.standard_normal((n, 1))
    again = ridge_path(x.copy(), y2, x_te.copy(), (3.0,), cache)[3.0]
    assert (cache.misses, cache.hits) == (1, 1)
    expected = Ridge(alpha=3.0).fit(scaler.transform(x), y2).predict(scaler.transform(x_te)).reshape(-1, 1)
    np.testing.assert_allclose(again, expected, rtol=1e-8, atol=1e-10)


def _labelled(kind: str, n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows on very different scales (what standardising is for) with labels they partly explain."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * rng.uniform(0.1, 5.0, d) + rng.uniform(-3, 3, d)
    logits = (x - x.mean(axis=0)) / x.std(axis=0) @ rng.standard_normal((d, 3)) / np.sqrt(d) * 3 + rng.standard_normal((n, 3))
    x[:, 1], x[:, 2] = 4.0, 2 * x[:, 0] - 1  # a dead unit and a dependent one: rank < min(n, d)
    y = logits.argmax(axis=1) if kind == "single" else (logits > 0.3).astype(np.int64)
    return x, y, rng.standard_normal((15, d)) * 2


def _sklearn_logistic(kind: str, x: np.ndarray, y: np.ndarray, x_te: np.ndarray, alpha: float, **fit: float | str) -> np.ndarray:
    """The probe's old formulation: scikit-learn on the standardised rows themselves."""
    scaler = StandardScaler().fit(x)
    a, b = scaler.transform(x), scaler.transform(x_te)
    if kind == "single":
        return LogisticRegression(C=1.0 / alpha, **fit).fit(a, y).predict_proba(b)
    return np.stack([LogisticRegression(C=1.0 / alpha, **fit).fit(a, y[:, c]).predict_proba(b)[:, 1] for c in range(y.shape[1])], axis=1)


@pytest.mark.parametrize("kind", ["single", "multilabel"])
@pytest.mark.parametrize("n, d", [(45, 120), (150, 12)])  # n < d: a real reduction; n > d: a rotation
def test_logistic_on_rotated_rows_equals_sklearn_on_standardised_rows(kind: str, n: int, d: int) -> None:
    x, y, x_te = _labelled(kind, n, d, seed=n + d)
    truth = np.eye(3)[y] if kind == "single" else y.astype(np.float64)
    settings = ProbeSettings(alphas=(1.0, 10.0, 300.0), tol=1e-10, max_iter=100_000)
    paths = predictions_path(kind, x, y, truth, x_te, settings.alphas, settings, BasisCache())
    for alpha, pred in paths.items():
        expected = _sklearn_logistic(kind, x, y, x_te, alpha, tol=1e-10, max_iter=100_000)
        np.testing.assert_allclose(pred, expected, atol=1e-5)  # lbfgs stops on a relative decrease of ~1e-14


def test_logistic_at_default_tolerance_stays_near_the_optimum_like_the_raw_fit() -> None:
    """At scikit-learn's default tol the solver stops early, and its stopping rule (largest
    gradient entry) depends on the coordinates: rotated and raw fits differ by about as much
    as either differs from the optimum (docs/probes.md quotes the effect on the probe scores)."""
    x, y, x_te = _labelled("single", 60, 150, seed=4)
    truth = np.eye(3)[y]
    settings = ProbeSettings(alphas=(1.0, 100.0))
    fast = predictions_path("single", x, y, truth, x_te, settings.alphas, settings)
    for alpha, pred in fast.items():
        optimum = _sklearn_logistic("single", x, y, x_te, alpha, tol=1e-10, max_iter=100_000)
        raw = _sklearn_logistic("single", x, y, x_te, alpha, max_iter=settings.max_iter)  # the old probe: lbfgs, raw rows
        raw_error = np.abs(raw - optimum).max()
        assert np.abs(pred - optimum).max() <= max(2 * raw_error, 1e-3)


def test_logistic_on_rows_of_full_rank_is_the_raw_fit_itself() -> None:
    """Where the rows span every direction nothing is rotated: the default-tolerance fit is
    scikit-learn's (same solver) on the standardised rows, to rounding."""
    rng = np.random.default_rng(8)
    x, x_te = rng.standard_normal((80, 6)) * [1, 2, 3, 4, 5, 6], rng.standard_normal((10, 6))
    y = (x[:, 0] + x[:, 1] + rng.standard_normal(80) > 0).astype(np.int64) + (x[:, 2] > 2)
    settings = ProbeSettings(alphas=(10.0,))
    pred = predictions_path("single", x, y, np.eye(3)[y], x_te, settings.alphas, settings, BasisCache())[10.0]
    expected = _sklearn_logistic("single", x, y, x_te, 10.0, max_iter=settings.max_iter, solver=settings.solver)
    np.testing.assert_allclose(pred, expected, atol=1e-12)


def test_basis_keeps_exactly_the_directions_the_rows_span() -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((30, 8))
    x[:, 5], x[:, 6] = 3.0, x[:, 0] - x[:, 1]  # rank 6 after centring
    found = basis(x, x[:4])
    assert found.s.shape == (6,) and found.u.shape == (30, 6) and found.z_te.shape == (4, 6)
    a = StandardScaler().fit_transform(x)
    np.testing.assert_allclose(found.s, np.linalg.svd(a, compute_uv=False)[:6], rtol=1e-10)
    np.testing.assert_allclose(found.z_tr @ found.z_tr.T, a @ a.T, atol=1e-9)  # a rotation of the rows
    np.testing.assert_allclose(found.z_te @ found.z_tr.T, a[:4] @ a.T, atol=1e-9)
    assert basis(np.ones((5, 3)), np.ones((2, 3))).z_tr.shape == (5, 1)  # constant rows: one zero column


def test_tasks_on_the_same_tracks_share_their_decompositions() -> None:
    rng = np.random.default_rng(5)
    n = 90
    groups = np.repeat(np.arange(n // 3), 3).astype(str)
    x = rng.standard_normal((n, 20))
    ids = [str(i) for i in range(n)]
    tasks = [
        Task("genre", "single", "x", ids, rng.integers(0, 3, n), ["a", "b", "c"]),
        Task("tempo", "regression", "x", ids, x[:, 0] + rng.standard_normal(n), []),
    ]
    settings = ProbeSettings(folds=4, inner_folds=2)
    cache = BasisCache()
    for task in tasks:
        shared = run_probe(x.copy(), task, groups, settings, cache)
        alone = run_probe(x, task, groups, settings)
        np.testing.assert_array_equal(shared.pred, alone.pred)
        assert shared.alphas == alone.alphas
        assert truth_matrix(task).shape == shared.pred.shape
    assert cache.misses == 4 + 4 * 2  # per outer fold: its own rows, and each inner split's
    assert cache.hits > 0


@pytest.mark.parametrize("classifier", ["logistic", "ridge"])
def test_separable_labels_probe_perfectly_and_noise_does_not(classifier: str) -> None:
    rng = np.random.default_rng(1)
    n = 120
    y = np.arange(n) % 3
    groups = np.repeat(np.arange(n // 4), 4).astype(str)  # artists of 4 tracks
    task = Task("genre", "single", "x", [str(i) for i in range(n)], y, ["a", "b", "c"])
    separable = np.eye(3)[y] * 10 + 0.01 * rng.standard_normal((n, 3))
    settings = ProbeSettings(folds=4, inner_folds=2, classifier=classifier)
    result = run_probe(separable, task, groups, settings)
    assert (result.pred.argmax(axis=1) == y).all()
    assert sorted(set(result.fold.tolist())) == [0, 1, 2, 3]
    noise = run_probe(rng.standard_normal((n, 3)), task, groups, settings)
    assert (noise.pred.argmax(axis=1) == y).mean() < 0.6


def test_metrics_against_hand_computed_values() -> None:
    # AUC of scores (0.1, 0.4, 0.35, 0.8) for labels (0, 0, 1, 1): pairs (pos>neg) 3 of 4
    ml = scores("multilabel", np.array([[0, 1], [0, 0], [1, 1], [1, 0]]), np.array([[0.1, 0.9], [0.4, 0.1], [0.35, 0.8], [0.8, 0.2]]))
    assert ml["roc_auc"] == pytest.approx((0.75 + 1.0) / 2)
    single = scores("single", np.eye(2)[[0, 0, 0, 1]], np.eye(2)[[0, 0, 1, 1]])
    assert single["accuracy"] == pytest.approx(0.75) and single["balanced_accuracy"] == pytest.approx((2 / 3 + 1) / 2)
    reg = scores("regression", np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0]))
    assert reg["r2"] == pytest.approx(1 - 2 / 2) and reg["spearman"] == pytest.approx(0.5)

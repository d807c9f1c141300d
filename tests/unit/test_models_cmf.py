"""cmf (models/cmf.py): the conjugate-gradient row solves equal a dense numpy solve of the
objective, a cold track's factor is its content's prediction, and through the workflow's run
code it ranks cold tracks far above random vectors."""

from __future__ import annotations

import numpy as np
import torch
from _tiny_split import one_thread, split  # noqa: F401 (autouse fixture)
from scipy import sparse
from test_models_content2cf import cold_hit_rates, cold_run_inputs  # noqa: F401 (module fixture)
from test_models_ials import planted_rows

from audiorec.models.cmf import CMFSettings, fit, ridge, sides, solve_rows
from audiorec.models.registry import declaration


def test_row_solves_equal_a_dense_solve_of_the_weighted_objective():
    """Enough CG steps solve each row exactly: the minimiser of Σ_j C_rj (P_rj − x·f_j)² +
    reg |x − prior_r|², written with the full confidence and preference matrices."""
    rng = np.random.default_rng(0)
    n_rows, n_cols, f, alpha, reg = 9, 14, 4, 3.0, 0.7
    values = (rng.random((n_rows, n_cols)) < 0.3).astype(np.float32) * rng.integers(1, 4, (n_rows, n_cols))
    fixed = rng.standard_normal((n_cols, f)).astype(np.float32)
    prior = rng.standard_normal((n_rows, f)).astype(np.float32)
    rows, _ = sides(sparse.csr_matrix(values), alpha, torch.device("cpu"))
    got = solve_rows(torch.zeros(n_rows, f), torch.from_numpy(fixed), rows, reg, torch.from_numpy(prior), steps=3 * f).numpy()
    for r in range(n_rows):
        c = np.where(values[r] > 0, alpha * values[r], 1.0)
        p = (values[r] > 0).astype(np.float64)
        a = fixed.T.astype(np.float64) @ (c[:, None] * fixed) + reg * np.eye(f)
        want = np.linalg.solve(a, fixed.T @ (c * p) + reg * prior[r])
        np.testing.assert_allclose(got[r], want, rtol=1e-4, atol=1e-5)


def test_ridge_equals_numpy_lstsq_with_an_unpenalised_intercept():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((30, 3)), rng.standard_normal((30, 2))
    coef = ridge(torch.from_numpy(x), torch.from_numpy(y), 2.0).numpy()
    design = np.hstack([x, np.ones((30, 1))])
    penalty = np.diag([2.0, 2.0, 2.0, 0.0])
    np.testing.assert_allclose(coef, np.linalg.solve(design.T @ design + penalty, design.T @ y), rtol=1e-8)


def test_cold_tracks_get_their_contents_prediction_and_warm_ones_lean_on_it():
    train, held = planted_rows(cold=True)
    data = split(train, held[::2], held[1::2])
    group = np.array([int(t[1]) for t in data.track_ids])
    content = np.eye(6)[group] + 0.1 * np.random.default_rng(0).standard_normal((data.n_items, 6))
    missing = np.zeros(data.n_items, bool)
    settings = CMFSettings(factors=8, iterations=8, cg_steps=8)
    users, items, coef, info = fit(data, content, missing, settings, 0, torch.device("cpu"))
    cold = np.array([t.startswith("c") for t in data.track_ids])
    x = torch.from_numpy(content.astype(np.float32))
    np.testing.assert_allclose(items[cold].numpy(), (x @ coef[:-1] + coef[-1])[cold].numpy(), rtol=1e-5, atol=1e-6)
    assert info["n_items_from_content"] == int(cold.sum()) and info["cmf_content_r2"] > 0.5
    again = fit(data, content, missing, settings, 0, torch.device("cpu"))[1]
    assert torch.equal(items, again)  # seeded


def test_declaration_matches_the_settings_defaults():
    decl = declaration("cmf")
    assert decl.reads_embeddings and decl.scores_unseen_tracks and not decl.gpu and not decl.extra_inputs
    own = {k: s["default"] for k, s in decl.settings.items() if k in CMFSettings.__dataclass_fields__}
    assert own == {k: getattr(CMFSettings(), k) for k in CMFSettings.__dataclass_fields__}


def test_cold_tracks_are_found_from_content_and_not_from_random_vectors(cold_run_inputs, tmp_path):  # noqa: F811
    hr, _ = cold_hit_rates(cold_run_inputs, tmp_path, {"type": "cmf", "factors": 8, "iterations": 8, "device": "cpu"})
    assert hr["emb"] > 0.95 and hr["random"] < 0.5, hr

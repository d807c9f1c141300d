"""contrastive (models/contrastive.py): the symmetric InfoNCE loss equals a numpy reference,
the projection aligns planted linear factors (top-1 retrieval of the right track), and through
the workflow's run code it ranks cold tracks far above random vectors."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from _tiny_split import one_thread, split  # noqa: F401 (autouse fixture)
from test_models_content2cf import cold_hit_rates, cold_run_inputs  # noqa: F401 (module fixture)

from audiorec.models.contrastive import (
    Contrastive,
    ContrastiveSettings,
    fit_projection,
    info_nce,
)
from audiorec.models.registry import declaration

pytest.importorskip("implicit")


def numpy_info_nce(a: np.ndarray, b: np.ndarray, t: float) -> float:
    """CLIP's loss written out: cosine logits / t, row-wise and column-wise softmax cross
    entropy of the diagonal, averaged."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    logits = (a @ b.T) / t
    n = len(a)
    rows = [np.log(np.exp(logits[i]).sum()) - logits[i, i] for i in range(n)]
    cols = [np.log(np.exp(logits[:, j]).sum()) - logits[j, j] for j in range(n)]
    return (np.mean(rows) + np.mean(cols)) / 2


@pytest.mark.parametrize("t", [0.07, 0.5, 1.0])
def test_info_nce_equals_a_numpy_reference(t):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((7, 5)), rng.standard_normal((7, 5))
    got = info_nce(torch.from_numpy(a), torch.from_numpy(b), t)
    assert float(got) == pytest.approx(numpy_info_nce(a, b, t), rel=1e-9)
    # hand case: two orthogonal pairs, t = 1: each row's softmax over (cos 1, cos 0)
    eye = torch.eye(2, dtype=torch.float64)
    assert float(info_nce(eye, eye, 1.0)) == pytest.approx(np.log(1 + np.e) - 1.0)
    # asymmetric in its halves, symmetric in its arguments
    assert float(info_nce(torch.from_numpy(b), torch.from_numpy(a), t)) == pytest.approx(float(got))


def test_projection_aligns_planted_linear_factors_and_retrieves_unseen_tracks():
    """Factors = content @ A: trained on 300 tracks, the projections of 100 others are each
    nearest their own factor (top-1 among the 100), as a random projection is not."""
    rng = np.random.default_rng(0)
    dim, f = 12, 8
    content = rng.standard_normal((400, dim)).astype(np.float32)
    factors = content @ rng.standard_normal((dim, f)).astype(np.float32)
    settings = ContrastiveSettings(hidden=(), epochs=150, batch_size=64, lr=0.01, patience=30)
    model, info = fit_projection(content[:300], factors[:300], settings, 0, torch.device("cpu"))
    with torch.no_grad():
        z = torch.nn.functional.normalize(model(torch.from_numpy(content[300:])), dim=1)
    true = torch.nn.functional.normalize(torch.from_numpy(factors[300:]), dim=1)
    top1 = float(((z @ true.T).argmax(1) == torch.arange(100)).float().mean())
    assert top1 > 0.9 and info["contrastive_val_top1"] > 0.9, (top1, info)
    # the scale: unit directions times the warm tracks' mean factor norm
    with torch.no_grad():
        lengths = model(torch.from_numpy(content[:5])).norm(dim=1)
    assert float(lengths.mean()) == pytest.approx(float(np.linalg.norm(factors[:300], axis=1).mean()), rel=1e-5)
    assert settings.min_temperature <= info["contrastive_temperature"] <= 1.0
    noise = rng.standard_normal((400, dim)).astype(np.float32)
    _, chance = fit_projection(noise[:300], factors[:300], settings, 0, torch.device("cpu"))
    assert chance["contrastive_val_top1"] < 0.3, chance


def test_a_fixed_temperature_stays_and_a_learned_one_moves():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((120, 6)).astype(np.float32)
    y = x @ rng.standard_normal((6, 4)).astype(np.float32)
    fixed = ContrastiveSettings(hidden=(8,), epochs=5, batch_size=32, learn_temperature=False, temperature=0.2)
    assert fit_projection(x, y, fixed, 0, torch.device("cpu"))[1]["contrastive_temperature"] == pytest.approx(0.2)
    learned = ContrastiveSettings(hidden=(8,), epochs=5, batch_size=32, lr=0.05, temperature=0.2)
    assert fit_projection(x, y, learned, 0, torch.device("cpu"))[1]["contrastive_temperature"] != pytest.approx(0.2)
    with pytest.raises(ValueError, match="min_temperature"):
        ContrastiveSettings.from_config({"temperature": 0.005})


def test_warm_items_own_keeps_the_ials_factors_of_warm_tracks_and_is_seeded():
    rng = np.random.default_rng(2)
    names = [f"t{i:02d}" for i in range(12)]
    data = split([(f"u{i % 3}", names[i], i) for i in range(8)], [(f"u{i % 3}", names[i], 100) for i in range(8, 12)])
    content = rng.standard_normal((12, 4)).astype(np.float32)
    items = torch.from_numpy(rng.standard_normal((12, 3)).astype(np.float32))
    items[8:] = 0
    users = torch.ones(data.n_users, 3)
    common = {"hidden": (8,), "epochs": 5, "batch_size": 4, "val_share": 0.0}
    cpu = torch.device("cpu")
    own = Contrastive(data, content, np.zeros(12, bool), users, items, ContrastiveSettings(warm_items="own", **common), 0, cpu)
    pred = Contrastive(data, content, np.zeros(12, bool), users, items, ContrastiveSettings(**common), 0, cpu)
    again = Contrastive(data, content, np.zeros(12, bool), users, items, ContrastiveSettings(**common), 0, cpu)
    assert torch.equal(own.items[:8], items[:8]) and torch.equal(own.items[8:], pred.items[8:])
    assert torch.equal(pred.items, again.items)
    assert not torch.allclose(pred.items[:8], items[:8])


def test_declaration_matches_the_settings_defaults():
    decl = declaration("contrastive")
    assert decl.reads_embeddings and decl.scores_unseen_tracks and not decl.gpu
    assert decl.extra_inputs == {"ials": "results/{dataset}/runs/ials/none/seed{seed}/model.pt"}
    own = {k: s["default"] for k, s in decl.settings.items() if k in ContrastiveSettings.__dataclass_fields__}
    assert set(own) == set(ContrastiveSettings.__dataclass_fields__)
    defaults = {k: getattr(ContrastiveSettings(), k) for k in own}
    assert {k: tuple(v) if isinstance(v, list) else v for k, v in own.items()} == defaults


def test_cold_tracks_are_found_from_content_and_not_from_random_vectors(cold_run_inputs, tmp_path):  # noqa: F811
    spec = {"type": "contrastive", "hidden": [32], "epochs": 100, "batch_size": 16, "lr": 0.01, "device": "cpu"}
    hr, infos = cold_hit_rates(cold_run_inputs, tmp_path, spec, {"ials": str(cold_run_inputs / "ials/model.pt")})
    for info in infos.values():
        assert info["warm_items"] == "predicted" and info["n_warm_items"] > 0 and "contrastive_temperature" in info
    # 3 cold tracks per group, 18 in all, a 5-long list: content finds the group's; noise by chance (~0.28)
    assert hr["emb"] > 0.95 and hr["random"] < 0.5, hr

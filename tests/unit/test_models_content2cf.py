"""content2cf (models/content2cf.py): the regression recovers factors that are a function of
content, and through the workflow's run code it ranks cold tracks far above random vectors."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch
from _tiny_split import one_thread, part, split  # noqa: F401 (autouse fixture)
from test_models_ials import K, N_GROUPS, planted_rows

from audiorec.extraction.store import write_embeddings
from audiorec.models.content2cf import Content2CF, Content2CFSettings, fit_regression
from audiorec.models.registry import declaration
from audiorec.models.run import RunPaths, train_run

pytest.importorskip("implicit")


def test_linear_regression_recovers_linear_factors_and_ranks_cold_tracks_by_them():
    """Item factors = content @ A (planted): trained on the warm tracks, the cold tracks'
    predicted factors are their true ones, so users rank them as the true factors would."""
    rng = np.random.default_rng(0)
    n_warm, n_cold, dim, f, n_users = 200, 40, 10, 5, 30
    content = rng.standard_normal((n_warm + n_cold, dim)).astype(np.float32)
    A = rng.standard_normal((dim, f)).astype(np.float32)
    true = content @ A
    # every warm track has one listener (so it is warm); cold tracks none
    names = [f"t{i:03d}" for i in range(n_warm + n_cold)]
    train = [(f"u{i % n_users:02d}", names[i], i) for i in range(n_warm)]
    asked = [(f"u{c % n_users:02d}", names[n_warm + c], 10_000) for c in range(n_cold)]
    data = split(train, asked[::2], asked[1::2])
    assert data.track_ids == names
    users = torch.from_numpy(rng.standard_normal((data.n_users, f)).astype(np.float32))
    items = torch.from_numpy(true.copy())
    items[n_warm:] = 0.0  # what iALS leaves for unheard tracks
    settings = Content2CFSettings(hidden=(), epochs=400, batch_size=64, lr=0.03, val_share=0.1, patience=50)
    model = Content2CF(data, content, np.zeros(len(names), bool), users, items, settings, seed=0, device=torch.device("cpu"))
    np.testing.assert_allclose(model.items[n_warm:].numpy(), true[n_warm:], atol=0.05 * np.abs(true).max())
    assert model.run_info["regression_val_r2"] > 0.999
    # the cold tracks' order per user is the true factors' order
    cold = torch.arange(n_warm, n_warm + n_cold)
    got = (users @ model.items[cold].T).argsort(dim=1, descending=True)[:, :3]
    want = (users @ torch.from_numpy(true[n_warm:]).T).argsort(dim=1, descending=True)[:, :3]
    assert (got == want).float().mean() > 0.9


def test_the_regression_fits_a_nonlinear_map_with_a_hidden_layer_and_not_with_none():
    rng = np.random.default_rng(1)
    x = rng.uniform(-2, 2, (600, 2)).astype(np.float32)
    y = np.stack([np.abs(x[:, 0]), x[:, 0] * x[:, 1]], axis=1).astype(np.float32)
    w = np.ones(len(x))
    fit = {}
    for hidden in ((), (64,)):
        settings = Content2CFSettings(hidden=hidden, epochs=300, batch_size=100, lr=0.01, patience=300)
        fit[hidden] = fit_regression(x, y, w, settings, 0, torch.device("cpu"))[1]["regression_val_r2"]
    assert fit[(64,)] > 0.9 and fit[()] < 0.3, fit


def test_warm_items_own_keeps_the_ials_factors_of_warm_tracks():
    rng = np.random.default_rng(2)
    names = [f"t{i:02d}" for i in range(12)]
    data = split([(f"u{i % 3}", names[i], i) for i in range(8)], [(f"u{i % 3}", names[i], 100) for i in range(8, 12)])
    assert data.track_ids == names
    content = rng.standard_normal((12, 4)).astype(np.float32)
    items = torch.from_numpy(rng.standard_normal((12, 3)).astype(np.float32))
    items[8:] = 0
    users = torch.ones(data.n_users, 3)
    common = dict(hidden=(8,), epochs=5, val_share=0.0)
    own = Content2CF(data, content, np.zeros(12, bool), users, items, Content2CFSettings(warm_items="own", **common), 0, torch.device("cpu"))
    pred = Content2CF(data, content, np.zeros(12, bool), users, items, Content2CFSettings(**common), 0, torch.device("cpu"))
    assert torch.equal(own.items[:8], items[:8]) and torch.equal(own.items[8:], pred.items[8:])
    assert not torch.allclose(pred.items[:8], items[:8])
    with pytest.raises(ValueError, match="warm_items"):
        Content2CFSettings.from_config({"warm_items": "both"})


def test_declaration_reads_the_ials_run_of_its_dataset_and_seed():
    decl = declaration("content2cf")
    assert decl.reads_embeddings and decl.scores_unseen_tracks and not decl.gpu
    assert decl.extra_inputs == {"ials": "results/{dataset}/runs/ials/none/seed{seed}/model.pt"}
    own = {k: s["default"] for k, s in decl.settings.items() if k in Content2CFSettings.__dataclass_fields__}
    defaults = {k: getattr(Content2CFSettings(), k) for k in own}
    assert {k: tuple(v) if isinstance(v, list) else v for k, v in own.items()} == defaults


@pytest.fixture(scope="module")
def cold_run_inputs(tmp_path_factory):
    """The planted groups under cold_items (new tracks c{g}-* nobody played), content =
    the group one-hot plus noise, and the ials run of it."""
    root = tmp_path_factory.mktemp("c2cf")
    train, asked = planted_rows(cold=True)
    frames = {"train": part(train), "val": part(asked[::2]), "test": part(asked[1::2])}
    for name, frame in frames.items():
        frame.write_parquet(root / f"{name}.parquet")
    cold = sorted({r[1] for r in asked})
    tracks = sorted({r[1] for r in train} | set(cold))
    flags = [t in cold for t in tracks]
    pl.DataFrame({"track_id": tracks, "cold": flags, "candidate": flags}).write_parquet(root / "catalogue.parquet")
    rng = np.random.default_rng(0)
    group = np.array([int(t[1]) for t in tracks])
    write_embeddings(root / "emb.h5", tracks, np.eye(N_GROUPS)[group] + 0.2 * rng.standard_normal((len(tracks), N_GROUPS)))
    ials = root / "ials"
    ials.mkdir()
    train_run({"type": "ials", "factors": 16, "regularization": 0.1, "iterations": 10, "device": "cpu"}, "none", 0, K, paths(root, ials))
    return root


def paths(root, out, backend: str = "none", extra: dict | None = None) -> RunPaths:
    return RunPaths(
        train=str(root / "train.parquet"), val=str(root / "val.parquet"), test=str(root / "test.parquet"),
        embeddings=str(root / "emb.h5") if backend == "emb" else None,
        recs_val=str(out / "recs_val.parquet"), recs_test=str(out / "recs_test.parquet"),
        history=str(out / "history.csv"), weights=str(out / "model.pt"), info=str(out / "run.json"),
        catalogue=str(root / "catalogue.parquet"), extra=extra or {},
    )


def cold_hit_rates(root, tmp_path, spec, extra=None):
    """Train `spec` on the cold-item split of `cold_run_inputs` with the group-revealing
    content (`emb`) and with `random` vectors: per backend, the mean HR@K over val and test
    users, and the run's run.json."""
    from audiorec.evaluation.metrics import per_user_metrics

    truth = pl.concat([pl.read_parquet(root / f"{p}.parquet") for p in ("val", "test")])
    hr, infos = {}, {}
    for backend in ("emb", "random"):
        out = tmp_path / backend
        out.mkdir()
        train_run(spec, backend, 0, K, paths(root, out, backend, extra))
        recs = pl.concat([pl.read_parquet(out / f"recs_{p}.parquet") for p in ("val", "test")])
        hr[backend] = per_user_metrics(recs, truth, K)["hitrate"].mean()
        infos[backend] = json.loads((out / "run.json").read_text())
    return hr, infos


def test_cold_tracks_are_found_from_content_and_not_from_random_vectors(cold_run_inputs, tmp_path):
    spec = {"type": "content2cf", "hidden": [32], "epochs": 100, "batch_size": 16, "lr": 0.01, "device": "cpu"}
    hr, infos = cold_hit_rates(cold_run_inputs, tmp_path, spec, {"ials": str(cold_run_inputs / "ials/model.pt")})
    for info in infos.values():
        assert info["warm_items"] == "predicted" and info["n_warm_items"] > 0
    # 3 cold tracks per group, 18 in all, a 5-long list: content finds the group's (all 3 fit
    # in the list); noise hits by chance (5/18 = 0.28 expected)
    assert hr["emb"] > 0.95 and hr["random"] < 0.5, hr


def test_an_ials_run_of_another_split_is_refused(cold_run_inputs, tmp_path):
    root = cold_run_inputs
    other = tmp_path / "other"
    other.mkdir()
    saved = torch.load(root / "ials/model.pt", weights_only=True)
    saved["track_ids"] = saved["track_ids"][::-1]
    torch.save(saved, other / "model.pt")
    with pytest.raises(ValueError, match="not this split's"):
        train_run({"type": "content2cf", "epochs": 1}, "emb", 0, K, paths(root, tmp_path, "emb", {"ials": str(other / "model.pt")}))

"""iALS (models/ials.py): the same factors and lists as a direct `implicit` call, better than
popularity on planted tastes, and a floor (every cold track tied at zero) under cold_items."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch
from _tiny_split import one_thread, part, run_paths, split  # noqa: F401 (autouse fixture)
from scipy import sparse
from threadpoolctl import threadpool_limits

from audiorec.models.ials import IALS, IALSSettings
from audiorec.models.registry import declaration
from audiorec.models.run import train_run

implicit_als = pytest.importorskip("implicit.cpu.als")

N_GROUPS, ITEMS_PER_GROUP, USERS_PER_GROUP, K = 6, 10, 20, 5


def planted_rows(seed: int = 0, cold: bool = False) -> tuple[list[tuple], list[tuple]]:
    """Users of a group listen to 5 (Zipf-weighted) tracks of their group plus the top track
    of another group (the global hits); each val/test target is a track of their group they
    did not play, or with `cold` a new track of their group nobody played in train.
    Popularity finds the global hits; a model of tastes finds the group."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, ITEMS_PER_GROUP + 1)
    weights /= weights.sum()
    train, held = [], []
    for g in range(N_GROUPS):
        for n in range(USERS_PER_GROUP):
            user = f"u{g}-{n:02d}"
            own = rng.choice(ITEMS_PER_GROUP, 6, replace=False, p=weights)
            train += [(user, f"t{g}-{i}", j, int(rng.integers(1, 6))) for j, i in enumerate(own[:5])]
            other = (g + int(rng.integers(1, N_GROUPS))) % N_GROUPS
            train.append((user, f"t{other}-0", 9, 1))
            held.append((user, f"c{g}-{n % 3}" if cold else f"t{g}-{own[5]}", 100))
    return train, held


def direct_matrix(train_rows: list[tuple], user_ids: list[str], track_ids: list[str], plays: bool) -> sparse.csr_matrix:
    """The [users x items] matrix built from the rows themselves (not through SplitData)."""
    u = {x: i for i, x in enumerate(user_ids)}
    t = {x: i for i, x in enumerate(track_ids)}
    cells: dict[tuple[int, int], float] = {}
    for row in train_rows:
        key = (u[row[0]], t[row[1]])
        cells[key] = cells.get(key, 0.0) + (row[3] if plays else 1.0)
    rows, cols = zip(*cells, strict=True)
    return sparse.csr_matrix((np.array(list(cells.values()), dtype=np.float32), (rows, cols)), shape=(len(u), len(t)))


@pytest.mark.parametrize("interactions", ["binary", "plays"])
def test_factors_and_lists_equal_a_direct_implicit_call(interactions):
    train, held = planted_rows()
    data = split(train, held[::2], held[1::2])
    settings = IALSSettings(factors=8, regularization=0.05, alpha=4.0, iterations=6, interactions=interactions, device="cpu")
    model = IALS(data, settings, seed=3, threads=1)

    with threadpool_limits(1, "blas"):
        direct = implicit_als.AlternatingLeastSquares(factors=8, regularization=0.05, alpha=4.0, iterations=6, random_state=3, num_threads=1)
        direct.fit(direct_matrix(train, data.user_ids, data.track_ids, interactions == "plays"), show_progress=False)
    np.testing.assert_allclose(model.users.numpy(), direct.user_factors, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.items.numpy(), direct.item_factors, rtol=1e-5, atol=1e-6)

    users = data.parts["test"].users
    top = data.rank(model.factors(), users, K)
    scores = direct.user_factors[users] @ direct.item_factors.T
    for row, user in enumerate(users):
        heard = set(data.train.indices[data.train.indptr[user] : data.train.indptr[user + 1]].tolist())
        order = [i for i in np.argsort(-scores[row], kind="stable") if i not in heard][:K]
        assert top.items[row].tolist() == order
        np.testing.assert_allclose(top.scores[row], scores[row, order], rtol=1e-5, atol=1e-6)


def test_the_seed_decides_the_factors():
    train, held = planted_rows()
    data = split(train, held[::2], held[1::2])
    settings = IALSSettings(factors=8, iterations=3, device="cpu")
    a, b, c = (IALS(data, settings, seed=s, threads=1) for s in (0, 0, 1))
    assert torch.equal(a.items, b.items) and torch.equal(a.users, b.users)
    assert not torch.allclose(a.items, c.items)


def hitrate(data, factors, part_name: str) -> float:
    part = data.parts[part_name]
    top = data.rank(factors, part.users, K)
    hits = [
        bool(set(top.items[row].tolist()) & set(part.relevant.indices[part.relevant.indptr[u] : part.relevant.indptr[u + 1]].tolist()))
        for row, u in enumerate(part.users)
    ]
    return float(np.mean(hits))


def test_ials_beats_popularity_on_planted_tastes():
    from audiorec.models.pop import Popularity

    train, held = planted_rows()
    data = split(train, held[::2], held[1::2])
    ials = IALS(data, IALSSettings(factors=16, regularization=0.1, alpha=10.0, iterations=10, device="cpu"), seed=0, threads=1)
    pop = Popularity(data)
    hr_ials = hitrate(data, ials.factors(), "test")
    hr_pop = hitrate(data, pop.factors(), "test")
    # each user's 4 unheard own-group tracks are all within reach of a 5-long list
    assert hr_ials > 0.9, hr_ials
    assert hr_ials > hr_pop + 0.3, (hr_ials, hr_pop)


def test_bad_settings_name_the_key():
    with pytest.raises(ValueError, match="interactions"):
        IALSSettings.from_config({"type": "ials", "interactions": "minutes"})
    with pytest.raises(ValueError, match="device"):
        IALSSettings.from_config({"type": "ials", "device": "tpu"})


def test_cuda_without_implicits_gpu_build_is_an_error(monkeypatch):
    import implicit.gpu

    from audiorec.models.ials import use_gpu

    monkeypatch.setattr(implicit.gpu, "HAS_CUDA", False)
    assert use_gpu("auto") is False and use_gpu("cpu") is False
    with pytest.raises(RuntimeError, match="device is 'cuda'"):
        use_gpu("cuda")


def test_declared_as_a_cpu_model_without_vectors_that_cannot_score_unseen_tracks():
    decl = declaration("ials")
    assert decl.inputs == () and not decl.gpu and not decl.scores_unseen_tracks
    assert {"factors", "regularization", "alpha", "iterations", "interactions"} <= set(decl.settings)
    assert all("default" in s and "description" in s for s in decl.settings.values())
    # the declared defaults are the code's defaults
    assert {k: s["default"] for k, s in decl.settings.items()} == {
        k: getattr(IALSSettings(), k) for k in IALSSettings.__dataclass_fields__
    }


def test_a_cold_split_gets_every_cold_track_tied_at_zero(tmp_path):
    """Under cold_items the held-out tracks have no train pair: zero factors, every user the
    same list (ties to the lower id), the report's floor; the factors are saved in model.pt."""
    train, asked = planted_rows(cold=True)
    cold = sorted({t for _, t, _ in asked} | {"c9-unasked"})  # the catalogue has unasked ones too
    frames = {"train": part(train), "val": part(asked[::2]), "test": part(asked[1::2])}
    tracks = sorted({r[1] for r in train} | set(cold))
    catalogue = pl.DataFrame({"track_id": tracks, "cold": [t in cold for t in tracks], "candidate": [t in cold for t in tracks]})
    for name, frame in frames.items():
        frame.write_parquet(tmp_path / f"{name}.parquet")
    catalogue.write_parquet(tmp_path / "catalogue.parquet")
    out = tmp_path / "run"
    out.mkdir()
    paths = run_paths(tmp_path, out, catalogue=str(tmp_path / "catalogue.parquet"))
    train_run({"type": "ials", "factors": 8, "iterations": 3, "device": "cpu"}, "none", 0, K, paths)
    recs = pl.concat([pl.read_parquet(out / f"recs_{p}.parquet") for p in ("val", "test")])
    assert set(recs["track_id"]) <= set(cold)
    assert recs["score"].to_list() == [0.0] * recs.height
    lists = recs.group_by("user_id").agg(pl.col("track_id").sort_by("rank"))["track_id"]
    assert lists.unique().len() == 1 and lists[0].to_list() == sorted(cold)[:K]
    info = json.loads((out / "run.json").read_text())
    assert info["scores_unseen_tracks"] is False and info["implicit_device"] == "cpu"
    assert info["n_items_without_train_pairs"] == len(cold)
    saved = torch.load(out / "model.pt", weights_only=True)
    index = {t: i for i, t in enumerate(saved["track_ids"])}
    items = saved["state"]["item_factors"]
    assert items.shape == (len(tracks), 8) and saved["state"]["user_factors"].shape[0] == len(saved["user_ids"])
    assert all(items[index[t]].abs().sum() == 0 for t in cold)
    assert all(items[index[t]].abs().sum() > 0 for t in {r[1] for r in train})

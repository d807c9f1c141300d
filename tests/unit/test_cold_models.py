"""Recommenders on a cold-item split: the catalogue, ranking over candidates, content vs floor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from _tiny_split import one_thread, part, run_paths  # noqa: F401 (autouse fixture)

from audiorec.evaluation.metrics import per_user_metrics
from audiorec.evaluation.ranking import Seen, top_k
from audiorec.extraction.store import write_embeddings
from audiorec.models.data import load_split, split_from_frames
from audiorec.models.run import train_run

# --- ranking over a candidate pool ---


def brute_force(scores: np.ndarray, seen: Seen, users: np.ndarray, k: int, pool: np.ndarray) -> list[list[int]]:
    """Top-k per user by (score desc, item index asc) among pool items the user has not seen."""
    out = []
    for row, u in enumerate(users):
        banned = set(seen.indices[seen.indptr[u] : seen.indptr[u + 1]].tolist())
        allowed = [i for i in pool.tolist() if i not in banned]
        out.append(sorted(allowed, key=lambda i: (-scores[row, i], i))[:k])
    return out


@pytest.mark.parametrize("cosine", [False, True])
@pytest.mark.parametrize("chunk", [1, 3, None])
def test_top_k_over_candidates_matches_brute_force(cosine, chunk):
    rng = np.random.default_rng(3)
    n_users, n_items, dim, k = 9, 30, 4, 5
    # integer factors: many exact ties, which must go to the lower catalogue index
    users_f = torch.tensor(rng.integers(-2, 3, (n_users, dim)), dtype=torch.float32)
    items_f = torch.tensor(rng.integers(-2, 3, (n_items, dim)), dtype=torch.float32)
    items_f[items_f.abs().sum(1) == 0, 0] = 1.0  # no zero vector (undefined cosine)
    bias = torch.tensor(rng.integers(0, 2, n_items), dtype=torch.float32)
    pool = np.sort(rng.choice(n_items, 12, replace=False))
    lists = [rng.choice(n_items, rng.integers(0, 15), replace=False) for _ in range(n_users)]
    seen = Seen(indptr=np.cumsum([0] + [len(x) for x in lists]), indices=np.concatenate(lists).astype(np.int64))
    users = np.array([0, 2, 3, 5, 8])
    got = top_k(users_f, items_f, users, seen, k, item_bias=bias, cosine=cosine, users_per_chunk=chunk, candidates=pool)
    u, it = users_f, items_f
    if cosine:
        u, it = torch.nn.functional.normalize(u, dim=1), torch.nn.functional.normalize(it, dim=1)
    scores = (u[users] @ it.T + bias).numpy()
    expected = brute_force(scores, seen, users, k, pool)
    for row, want in enumerate(expected):
        have = got.items[row][got.items[row] >= 0].tolist()
        assert have == want, (row, have, want)
        assert set(have) <= set(pool.tolist())


def test_top_k_rejects_a_bad_pool():
    seen = Seen(indptr=np.array([0, 0]), indices=np.array([], dtype=np.int64))
    f = torch.ones(1, 2)
    for pool in ([3, 1], [], [0, 7]):
        with pytest.raises(ValueError, match="candidates"):
            top_k(f, torch.ones(5, 2), np.array([0]), seen, 2, candidates=np.array(pool, dtype=np.int64))


# --- a cold-item split with audible genres ---

N_GENRES, WARM_PER_GENRE, COLD_PER_GENRE, USERS_PER_GENRE = 4, 10, 4, 8
K = 3


def track(genre: int, i: int, cold: bool) -> str:
    return f"{'c' if cold else 'w'}{genre}-{i:02d}"


@pytest.fixture(scope="module")
def cold_split(tmp_path_factory):
    """Users each like one genre; train = warm tracks of it, val/test = cold tracks of it.
    The last cold track of every genre is asked of nobody (it must still be in the catalogue)."""
    root = tmp_path_factory.mktemp("cold")
    rng = np.random.default_rng(0)
    train, val, test = [], [], []
    for g in range(N_GENRES):
        for n in range(USERS_PER_GENRE):
            user = f"u{g}-{n}"
            warm = rng.permutation(WARM_PER_GENRE)[:6]
            train += [(user, track(g, int(i), False), j) for j, i in enumerate(warm)]
            other = (g + 1) % N_GENRES
            train.append((user, track(other, int(rng.integers(WARM_PER_GENRE)), False), 7))
            asked = rng.permutation(COLD_PER_GENRE - 1)[:2]
            (val if n % 2 else test).extend((user, track(g, int(i), True), 100 + j) for j, i in enumerate(asked))
    for name, rows in (("train", train), ("val", val), ("test", test)):
        part(rows).write_parquet(root / f"{name}.parquet")
    warm_ids = [track(g, i, False) for g in range(N_GENRES) for i in range(WARM_PER_GENRE)]
    cold_ids = [track(g, i, True) for g in range(N_GENRES) for i in range(COLD_PER_GENRE)]
    pl.DataFrame(
        {
            "track_id": warm_ids + cold_ids,
            "cold": [False] * len(warm_ids) + [True] * len(cold_ids),
            "candidate": [False] * len(warm_ids) + [True] * len(cold_ids),
        }
    ).sort("track_id").write_parquet(root / "catalogue.parquet")
    ids = warm_ids + cold_ids
    genre = np.array([int(t[1]) for t in ids])
    vectors = np.eye(N_GENRES)[genre] + 0.15 * rng.standard_normal((len(ids), N_GENRES))
    write_embeddings(root / "emb.h5", ids, np.hstack([vectors, 0.15 * rng.standard_normal((len(ids), 2))]))
    return root, set(cold_ids), {(u, t) for u, t, _ in train}


def test_the_catalogue_indexes_every_cold_track_and_only_they_are_candidates(cold_split):
    root, cold_ids, _ = cold_split
    data = load_split(*(root / f"{p}.parquet" for p in ("train", "val", "test", "catalogue")))
    assert data.n_items == N_GENRES * (WARM_PER_GENRE + COLD_PER_GENRE)  # unasked cold tracks included
    assert [data.track_ids[i] for i in data.candidates] == sorted(cold_ids)
    plain = load_split(*(root / f"{p}.parquet" for p in ("train", "val", "test")))
    assert plain.candidates is None and plain.n_items == data.n_items - N_GENRES


def test_a_stale_catalogue_is_an_error(cold_split):
    root, _, _ = cold_split
    frames = {p: pl.read_parquet(root / f"{p}.parquet") for p in ("train", "val", "test")}
    catalogue = pl.read_parquet(root / "catalogue.parquet")
    with pytest.raises(ValueError, match="lacks .* track"):
        split_from_frames(frames, catalogue=catalogue.filter(pl.col("track_id") != "w0-00"))
    asked = frames["val"]["track_id"][0]
    with pytest.raises(ValueError, match="does not mark as candidates"):
        split_from_frames(frames, catalogue=catalogue.with_columns(pl.col("candidate") & (pl.col("track_id") != asked)))


SPECS = {
    "pop": {"type": "pop"},
    "knn": {"type": "knn"},
    "shallow": {"type": "shallow", "epochs": 2, "batch_size": 64, "n_negatives": 3},
    "bert4rec": {"type": "bert4rec", "epochs": 2, "hidden_size": 8, "max_len": 8, "batch_size": 8},
}


def run(root, out, model, backend):
    embeddings = None if backend in ("none", "random") else root / "emb.h5"
    paths = run_paths(root, out, embeddings, catalogue=str(root / "catalogue.parquet"))
    train_run(dict(SPECS[model]), backend, 0, K, paths)
    truth = pl.concat([pl.read_parquet(root / "val.parquet"), pl.read_parquet(root / "test.parquet")])
    recs = pl.concat([pl.read_parquet(out / "recs_val.parquet"), pl.read_parquet(out / "recs_test.parquet")])
    return recs, per_user_metrics(recs, truth, K)


@pytest.mark.parametrize(
    ("model", "backend"),
    [("pop", "none"), ("knn", "emb"), ("knn", "random"), ("shallow", "emb"), ("shallow", "random"), ("bert4rec", "emb"), ("bert4rec", "random")],
)
def test_every_model_ranks_cold_tracks_only(cold_split, tmp_path, model, backend):
    root, cold_ids, heard = cold_split
    recs, metrics = run(root, tmp_path, model, backend)
    assert set(recs["track_id"]) <= cold_ids
    assert not heard & set(zip(recs["user_id"], recs["track_id"], strict=True))
    assert recs.group_by("user_id").len()["len"].to_list() == [K] * recs["user_id"].n_unique()
    assert metrics.height == N_GENRES * USERS_PER_GENRE and metrics["ndcg"].is_finite().all()
    assert json.loads((tmp_path / "run.json").read_text())["n_candidates"] == len(cold_ids)


def test_content_knn_finds_cold_tracks_that_pop_and_random_cannot(cold_split, tmp_path):
    root, _, _ = cold_split
    hr = {}
    for model, backend in (("pop", "none"), ("knn", "emb"), ("knn", "random")):
        out = tmp_path / f"{model}-{backend}"
        out.mkdir()
        recs, metrics = run(root, out, model, backend)
        hr[model, backend] = metrics["hitrate"].mean()
        if model == "pop":
            # no cold track has a train listen: all score 0, and every user gets the same list
            assert recs["score"].to_list() == [0.0] * recs.height
            assert recs.group_by("user_id").agg(pl.col("track_id").sort_by("rank"))["track_id"].unique().len() == 1
    assert hr["knn", "emb"] == 1.0  # 3 of the genre's 4 cold tracks in the list, 2 of them asked
    assert hr["knn", "emb"] > hr["knn", "random"] and hr["knn", "emb"] > hr["pop", "none"]


def test_the_report_of_a_cold_split_states_its_question(cold_split, tmp_path):
    from audiorec.report.aggregate import Catalogue, ReportSettings
    from audiorec.report.build import ReportOutputs, build_report

    root, _, _ = cold_split
    files = []
    for model, backend in (("pop", "none"), ("knn", "emb"), ("knn", "random")):
        out = tmp_path / "runs" / model / backend / "seed0"
        out.mkdir(parents=True)
        run(root, out, model, backend)
        for name in ("val", "test"):
            truth = pl.read_parquet(root / f"{name}.parquet")
            per_user_metrics(pl.read_parquet(out / f"recs_{name}.parquet"), truth, K).write_parquet(out / f"metrics_{name}.parquet")
            files.append(out / f"metrics_{name}.parquet")
    stats = tmp_path / "stats.csv"
    pl.DataFrame({"stage": ["part"] * 3, "name": ["train", "val", "test"], "users": [32, 16, 16]}).write_csv(stats)
    report = tmp_path / "report"
    outputs = ReportOutputs(**{name: report / f"{name}.out" for name in ReportOutputs.__dataclass_fields__})
    protocol = {"protocol": "cold_items", "cold_item_share": 0.1, "include_new_tracks": True, "cold_candidates": "cold"}
    catalogue = Catalogue(model_types={"pop": "pop", "knn": "knn"}, backend_types={"emb": "mfcc"})
    build_report(files, stats, outputs, ReportSettings(k=K, n_permutations=200), catalogue, "onion-cold", "music4all-onion", protocol=protocol)
    text = Path(outputs.table3).read_text()
    assert text.startswith("# onion-cold: cold-start items")
    assert "a seeded 10% of the tracks heard in the train window and every track first heard" in text
    assert "ranks only the cold tracks" in text and "## Cold-start items (Table 3 layout) — test split, K=3" in text
    assert "(paper)" not in text  # the paper's warm numbers are never set beside cold-start ones
    metrics = pl.read_csv(outputs.metrics)
    assert set(metrics["backend"]) == {"none", "emb", "random"}

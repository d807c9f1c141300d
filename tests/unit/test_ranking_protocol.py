"""The evaluation protocol every run shares: what is never ranked (tracks without a vector)
and what is never recommended (pairs the split treats as known), through whole training jobs."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch
from _tiny_split import one_thread, part, run_paths  # noqa: F401 (autouse fixture)
from test_split import history_log, write_log

from audiorec.data.split import SplitSettings, split_log, write_split
from audiorec.extraction.store import write_embeddings
from audiorec.models.data import load_split
from audiorec.models.run import RunPaths, train_run

SPECS = {
    "pop": {"type": "pop"},
    "knn": {"type": "knn"},
    "shallow": {"type": "shallow", "epochs": 2, "batch_size": 256, "n_negatives": 3},
    "bert4rec": {"type": "bert4rec", "epochs": 2, "hidden_size": 8, "max_len": 12, "batch_size": 16},
}
N_TRACKS = 100
FAILED = ["t000", "t001"]  # 2% of the catalogue: their audio "failed", no vector in the cache
LONELY = "u39"  # listened to failed tracks only: a model has no input for this user


def _paths(root, out, embeddings, known=True) -> RunPaths:
    return run_paths(root, out, embeddings, known=str(root / "known.parquet") if known else None)


@pytest.fixture(scope="module")
def failing_backend(tmp_path_factory):
    """40 users; the two failed tracks are the most played ones (half the users have them in
    train) and targets of some val/test users, so any invented vector would surface them."""
    root = tmp_path_factory.mktemp("failing")
    rng = np.random.default_rng(1)
    tracks = [f"t{i:03d}" for i in range(N_TRACKS)]
    train, val, test = [], [], []
    for n in range(40):
        user = f"u{n:02d}"
        if user == LONELY:
            train += [(user, FAILED[0], 0), (user, FAILED[1], 1)]
            test.append((user, tracks[50], 100))
            continue
        own = list(rng.choice(np.arange(2, N_TRACKS), size=14, replace=False))
        heard = ([0, 1] if n % 2 else []) + own[:10]
        train += [(user, tracks[i], j) for j, i in enumerate(heard)]
        asked = own[10:] + ([] if n % 2 else [n % 2])  # even users are asked for t000
        (val if n % 4 < 2 else test).extend((user, tracks[i], 100 + j) for j, i in enumerate(asked))
    frames = {"train": part(train), "val": part(val), "test": part(test)}
    for name, frame in frames.items():
        frame.write_parquet(root / f"{name}.parquet")
    frames["train"].select("user_id", "track_id").write_parquet(root / "known.parquet")
    vectors = rng.standard_normal((N_TRACKS, 8)).astype(np.float32)
    have = [i for i, t in enumerate(tracks) if t not in FAILED]
    write_embeddings(root / "emb.h5", [tracks[i] for i in have], vectors[have])
    write_embeddings(root / "full.h5", tracks, vectors)
    return root


@pytest.mark.parametrize("model", ["knn", "shallow", "bert4rec"])
def test_tracks_without_a_vector_are_never_recommended(failing_backend, tmp_path, model):
    root = failing_backend
    info = train_run(dict(SPECS[model]), "emb", 0, 10, _paths(root, tmp_path, str(root / "emb.h5")))
    recs = pl.concat([pl.read_parquet(tmp_path / f"recs_{p}.parquet") for p in ("val", "test")])
    assert recs.height > 0
    assert not set(recs["track_id"]) & set(FAILED)
    assert LONELY not in set(recs["user_id"])  # no input, no list (scored 0 by evaluation)
    full_lists = recs.filter(pl.col("user_id") != LONELY).group_by("user_id").len()["len"]
    assert (full_lists == 10).all()  # nobody else is short-changed
    recorded = json.loads((tmp_path / "run.json").read_text())
    assert recorded == json.loads(json.dumps(info, default=str))
    assert recorded["n_items_without_embedding"] == 2
    assert recorded["n_candidates_dropped_no_vector"] == 2
    assert recorded["n_candidates"] == N_TRACKS - 2
    assert recorded["n_users_without_input"] == 1
    assert recorded["n_train_rows_dropped_no_vector"] == 2 * 19 + 2  # the 19 odd users besides u39, and u39
    truth = pl.read_parquet(root / "val.parquet")
    assert recorded["n_val_targets_without_vector"] == truth.filter(pl.col("track_id").is_in(FAILED)).height > 0


@pytest.mark.parametrize("model", ["knn", "shallow"])
def test_a_backend_without_failures_runs_on_the_split_itself(failing_backend, tmp_path, model):
    """No failures: the run ranks the very split (not a copy), and KNN equals an independent
    cosine ranking with the known pairs removed."""
    root = failing_backend
    split = load_split(root / "train.parquet", root / "val.parquet", root / "test.parquet", known=root / "known.parquet")
    assert split.for_vectors(np.ones(split.n_items, dtype=bool)) is split
    info = train_run(dict(SPECS[model]), "full", 0, 10, _paths(root, tmp_path, str(root / "full.h5")))
    assert info["n_candidates_dropped_no_vector"] == 0 and info["n_users_without_input"] == 0
    if model != "knn":
        return
    from audiorec.extraction.store import read_embeddings

    ids, vectors = read_embeddings(root / "full.h5")
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    train = pl.read_parquet(root / "train.parquet")
    recs = pl.read_parquet(tmp_path / "recs_test.parquet")
    for user, rows in train.group_by("user_id"):
        if user[0] not in set(recs["user_id"]):
            continue
        mean = vectors[[ids.index(t) for t in rows["track_id"]]].mean(axis=0)
        scores = unit @ (mean / np.linalg.norm(mean))
        heard = set(rows["track_id"])
        order = sorted((t for t in ids if t not in heard), key=lambda t: (-scores[ids.index(t)], t))[:10]
        got = recs.filter(pl.col("user_id") == user[0]).sort("rank")["track_id"].to_list()
        assert got == order


def test_a_track_heard_before_the_train_window_is_never_recommended(tmp_path):
    """h heard t2 in 2018 and again in the test month: the split does not ask for it, so no
    model may recommend it either (it could never be a hit)."""
    result = split_log(write_log(tmp_path / "log.tsv", history_log()), SplitSettings())
    files = {name: tmp_path / f"{name}.parquet" for name in ("train", "val", "test", "catalogue", "known")}
    write_split(result, files["train"], files["val"], files["test"], tmp_path / "stats.csv", files["catalogue"], files["known"])
    out = tmp_path / "run"
    out.mkdir()
    train_run({"type": "pop"}, "none", 0, 50, _paths(tmp_path, out, None))
    recs = pl.concat([pl.read_parquet(out / f"recs_{p}.parquet") for p in ("val", "test")])
    lists = {u: set(g["track_id"]) for (u,), g in recs.group_by("user_id")}
    assert "h" in lists and "t2" not in lists["h"] and "t1" not in lists["h"]
    assert "t3" in lists["h"]  # h's target is still rankable
    # before this rule only train pairs were removed: t2 (in a1's train, so popular) came back
    out_old = tmp_path / "old"
    out_old.mkdir()
    train_run({"type": "pop"}, "none", 0, 50, _paths(tmp_path, out_old, None, known=False))
    old = pl.concat([pl.read_parquet(out_old / f"recs_{p}.parquet") for p in ("val", "test")])
    assert "t2" in set(old.filter(pl.col("user_id") == "h")["track_id"])


def test_known_file_with_foreign_rows_is_tolerated_and_train_always_excluded(tmp_path):
    """Pairs of tracks or users outside the split's index cannot be ranked and are ignored;
    train pairs are excluded even when a known file forgot them."""
    from audiorec.models.data import split_from_frames

    frames = {
        "train": part([("a", "x", 1), ("a", "y", 2), ("b", "x", 3)]),
        "val": part([("a", "z", 10)]),
        "test": part([("b", "z", 11)]),
    }
    known = pl.DataFrame({"user_id": ["b", "ghost", "a"], "track_id": ["y", "x", "unknown"]})
    data = split_from_frames(frames, known=known)
    excluded = {(data.user_ids[u], data.track_ids[i]) for u in range(2) for i in data.exclude.indices[data.exclude.indptr[u] : data.exclude.indptr[u + 1]]}
    assert excluded == {("a", "x"), ("a", "y"), ("b", "x"), ("b", "y")}
    scores = torch.tensor([[1.0, 2.0, 3.0]])
    from audiorec.models.base import Factors

    factors = Factors(users=torch.ones(2, 1), items=scores.T)
    top = data.rank(factors, np.array([0, 1]), 3)
    assert top.items.tolist() == [[2, -1, -1], [2, -1, -1]]  # only z is left for both

"""A whole training job (audiorec.models.run.train_run) on hand-made split files."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch
from _tiny_split import one_thread, part, run_paths  # noqa: F401 (autouse fixture)

from audiorec.extraction.store import write_embeddings
from audiorec.models.run import train_run

SPECS = {
    "pop": {"type": "pop"},
    "knn": {"type": "knn", "backends": ["emb"], "random_baseline": True},
    "shallow": {"type": "shallow", "epochs": 2, "batch_size": 64, "n_negatives": 3},
    "bert4rec": {"type": "bert4rec", "epochs": 2, "hidden_size": 8, "max_len": 6, "batch_size": 4},
    "sasrec": {"type": "sasrec", "epochs": 2, "hidden_size": 8, "max_len": 6, "batch_size": 4},
}


@pytest.fixture(scope="module")
def split_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("split")
    rng = np.random.default_rng(0)
    users = [f"u{u}" for u in range(12)]
    tracks = [f"t{i:02d}" for i in range(20)]
    train, val, test = [], [], []
    for n, u in enumerate(users):
        items = rng.permutation(20)
        train += [(u, tracks[i], j) for j, i in enumerate(items[:8])]
        (val if n % 2 else test).extend((u, tracks[i], 100 + j) for j, i in enumerate(items[8:11]))
    for name, rows in (("train", train), ("val", val), ("test", test)):
        part(rows).write_parquet(root / f"{name}.parquet")
    # t19 has no embedding (its extraction failed): it must get the fallback and be counted
    write_embeddings(root / "emb.h5", tracks[:19], rng.standard_normal((19, 6)))
    return root, train


def run(root, out, model, backend, seed=0):
    paths = run_paths(root, out, None if backend in ("none", "random") else root / "emb.h5")
    return train_run(dict(SPECS[model]), backend, seed, 5, paths)


@pytest.mark.parametrize(
    ("model", "backend"),
    [
        ("pop", "none"), ("knn", "emb"), ("knn", "random"), ("shallow", "emb"), ("shallow", "random"),
        ("bert4rec", "emb"), ("bert4rec", "random"), ("sasrec", "emb"), ("sasrec", "random"),
    ],
)
def test_run_writes_every_output_by_contract(split_files, tmp_path, model, backend):
    root, train_rows = split_files
    info = run(root, tmp_path, model, backend)
    heard = {(u, t) for u, t, _ in train_rows}
    for part_name in ("val", "test"):
        recs = pl.read_parquet(tmp_path / f"recs_{part_name}.parquet")
        assert recs.schema == {"user_id": pl.String, "track_id": pl.String, "rank": pl.Int32, "score": pl.Float32}
        truth = pl.read_parquet(root / f"{part_name}.parquet")
        assert set(recs["user_id"]) == set(truth["user_id"])  # every evaluated user, no one else
        assert recs.group_by("user_id").agg(pl.col("rank").sort()).get_column("rank").to_list() == [[1, 2, 3, 4, 5]] * 6
        assert not heard & set(zip(recs["user_id"], recs["track_id"], strict=True))  # listened tracks removed
        scores = recs.sort("user_id", "rank").group_by("user_id", maintain_order=True).agg("score")["score"].to_list()
        assert all(np.all(np.diff(s) <= 0) for s in scores)
    history = pl.read_csv(tmp_path / "history.csv")
    assert {"epoch", "loss", "val_ndcg", "val_hitrate", "lr", "n_items_without_embedding"} <= set(history.columns)
    assert history.height == (2 if model in ("shallow", "bert4rec", "sasrec") else 1)
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    assert saved["model"] == model and saved["backend"] == backend and len(saved["track_ids"]) == 20
    assert "items.table" not in saved["state"]  # frozen content vectors are the embeddings file
    assert ("items.id_table" in saved["state"]) == (backend == "random" and model != "knn")
    recorded = json.loads((tmp_path / "run.json").read_text())
    expected_missing = 1 if backend == "emb" else 0
    assert recorded["n_items_without_embedding"] == info["n_items_without_embedding"] == expected_missing
    assert history["n_items_without_embedding"].to_list() == [expected_missing] * history.height
    assert not (tmp_path / "checkpoint.pt").exists()


def test_same_seed_same_recs_other_seed_other_recs(split_files, tmp_path):
    root, _ = split_files
    frames = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        run(root, tmp_path / name, "bert4rec", "random", seed=seed)
        frames.append(pl.read_parquet(tmp_path / name / "recs_test.parquet"))
    assert frames[0].equals(frames[1])
    assert not frames[0].equals(frames[2])


def test_stale_checkpoint_of_other_settings_is_ignored(split_files, tmp_path):
    root, _ = split_files
    torch.save({"fingerprint": "something else"}, tmp_path / "checkpoint.pt")
    info = run(root, tmp_path, "shallow", "emb")
    assert info["resumed_from_epoch"] == 0 and info["epochs_run"] == 2
    assert not (tmp_path / "checkpoint.pt").exists()


@pytest.mark.parametrize("model", ["shallow", "sasrec"])
def test_every_items_mode_runs_and_is_recorded(split_files, tmp_path, model):
    root, _ = split_files
    recs = {}
    for items, normalize in (("content", "none"), ("finetune", "none"), ("hybrid", "l2"), ("matched_random", "standard")):
        SPECS[f"{model}_{items}"] = {**SPECS[model], "items": items, "normalize": normalize}
        info = run(root, tmp_path / items, f"{model}_{items}", "emb")
        assert (info["items"], info["normalize"], info["scores_unseen_tracks"]) == (items, normalize, True)
        recs[items] = pl.read_parquet(tmp_path / items / "recs_test.parquet")
    assert not recs["content"].equals(recs["matched_random"])
    info = run(root, tmp_path / "random", f"{model}_hybrid", "random")  # `random` is always items: id
    assert (info["items"], info["scores_unseen_tracks"]) == ("id", False)

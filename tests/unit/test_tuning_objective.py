"""A tuning job on hand-made split files: trials train like rule `train`, never read the test
part, and the best settings reach the final training."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from _tiny_split import one_thread, part, run_paths  # noqa: F401 (autouse fixture)

from audiorec.extraction.store import write_embeddings
from audiorec.models import data as model_data
from audiorec.models.run import train_run
from audiorec.tuning import objective
from audiorec.tuning.job import tune
from audiorec.tuning.objective import TuningInputs

SHALLOW = {"type": "shallow", "epochs": 3, "batch_size": 64, "n_negatives": 3, "lr": 1e-2, "margin": 0.2}
SPACE = {"lr": [1e-3, 1e-1, "log"], "n_negatives": [2, 6]}


@pytest.fixture(scope="module")
def split_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("split")
    rng = np.random.default_rng(0)
    tracks = [f"t{i:02d}" for i in range(20)]
    train, val, test = [], [], []
    for n in range(12):
        items = rng.permutation(20)
        train += [(f"u{n}", tracks[i], j) for j, i in enumerate(items[:8])]
        (val if n % 2 else test).extend((f"u{n}", tracks[i], 100 + j) for j, i in enumerate(items[8:11]))
    for name, rows in (("train", train), ("val", val), ("test", test)):
        part(rows).write_parquet(root / f"{name}.parquet")
    write_embeddings(root / "emb.h5", tracks, rng.standard_normal((20, 6)))
    return root


def run_tune(root, out, budget=3, seed=0):
    inputs = TuningInputs(train=root / "train.parquet", val=root / "val.parquet", embeddings=root / "emb.h5")
    return tune(
        dict(SHALLOW), SPACE, "emb", seed=0, study_seed=seed, budget=budget, metric="ndcg", k=5, inputs=inputs,
        journal=out / "journal.log", best=out / "best.json", trials=out / "trials.csv",
    )  # fmt: skip


def test_tuning_reads_train_and_val_only(split_files, tmp_path, monkeypatch):
    opened = []
    real = model_data.read_part
    monkeypatch.setattr(objective, "read_part", lambda path: opened.append(str(path)) or real(path))
    monkeypatch.setattr(model_data, "read_part", lambda path: opened.append(str(path)) or real(path))
    run_tune(split_files, tmp_path)
    assert opened and {p.rsplit("/", 1)[1] for p in opened} == {"train.parquet", "val.parquet"}


def test_default_trial_measures_what_the_train_job_measures(split_files, tmp_path):
    result = run_tune(split_files, tmp_path / "tune")
    assert result["n_finished"] == result["n_complete"] == result["budget"] == 3  # no pruning before 5 complete
    assert result["default_settings"] == {"lr": 1e-2, "n_negatives": 3}
    # the train job with the configured settings: its best val ndcg is the default trial's value
    info = train_run(dict(SHALLOW), "emb", 0, 5, run_paths(split_files, tmp_path, split_files / "emb.h5"))
    assert result["default_value"] == pytest.approx(info["best_val_metric"], abs=1e-9)
    trials = pl.read_csv(tmp_path / "tune" / "trials.csv")
    assert trials["state"].to_list() == ["COMPLETE"] * 3 and trials["epochs_run"].to_list() == [3, 3, 3]
    assert trials.filter(pl.col("value") == pl.col("value").max())["trial"][0] == result["trial"]


def test_the_train_job_of_a_tuned_model_uses_the_best_settings(split_files, tmp_path):
    best = tmp_path / "best.json"
    best.write_text(json.dumps({"settings": {"lr": 0.05, "n_negatives": 5}}))
    paths = run_paths(split_files, tmp_path, split_files / "emb.h5", extra={"tuned": str(best)})
    info = train_run(dict(SHALLOW), "emb", 0, 5, paths)
    assert info["tuned_settings"] == {"lr": 0.05, "n_negatives": 5}
    direct = train_run({**SHALLOW, "lr": 0.05, "n_negatives": 5}, "emb", 0, 5, run_paths(split_files, tmp_path / "d", split_files / "emb.h5"))
    assert info["best_val_metric"] == direct["best_val_metric"]
    best.write_text("{}")
    with pytest.raises(ValueError, match="best.json: not a tuning result"):
        train_run(dict(SHALLOW), "emb", 0, 5, paths)


def test_same_seed_same_study(split_files, tmp_path):
    a = run_tune(split_files, tmp_path / "a", budget=4, seed=5)
    b = run_tune(split_files, tmp_path / "b", budget=4, seed=5)
    assert pl.read_csv(tmp_path / "a" / "trials.csv").drop("seconds").equals(pl.read_csv(tmp_path / "b" / "trials.csv").drop("seconds"))
    assert a == b


def test_a_model_without_epochs_is_tuned_on_its_validation_metric(split_files, tmp_path):
    """iALS (no training loop, no pruning): each trial fits and scores val; its default trial
    measures what its train job measures."""
    spec = {"type": "ials", "factors": 4, "iterations": 3, "regularization": 0.01, "alpha": 10.0}
    inputs = TuningInputs(train=split_files / "train.parquet", val=split_files / "val.parquet")
    result = tune(
        dict(spec), {"regularization": [1e-3, 1.0, "log"]}, "none", seed=0, study_seed=1, budget=3, metric="ndcg", k=5,
        inputs=inputs, journal=tmp_path / "j.log", best=tmp_path / "best.json", trials=tmp_path / "trials.csv",
    )  # fmt: skip
    assert result["n_finished"] == result["n_complete"] == 3 and result["default_settings"] == {"regularization": 0.01}
    info = train_run(dict(spec), "none", 0, 5, run_paths(split_files, tmp_path / "run"))
    history = pl.read_csv(tmp_path / "run" / "history.csv")
    assert info["best_epoch"] == 0 and result["default_value"] == pytest.approx(history["val_ndcg"][0], abs=1e-9)

"""The `ials` model type through the workflow: rule train_baseline, backend `none`, its
settings validated against its declaration, the factors kept in model.pt."""

from __future__ import annotations

import json
import re

import polars as pl
import pytest
import torch
import yaml

from tests.conftest import ROOT, run_workflow
from tests.workflow.test_train import CONFIG, planned_jobs, write_inputs

pytest.importorskip("implicit")


def test_ials_runs_as_a_cpu_baseline_and_refuses_unknown_settings(tmp_path):
    write_inputs(tmp_path)
    config = {**CONFIG, "models": {"ials": {"factors": 4, "iterations": 3}}}
    run = tmp_path / "results/tiny/runs/ials/none/seed0"
    done = run_workflow(tmp_path, config, "--cores", "1", str(run.relative_to(tmp_path) / "recs_test.parquet"),
                        "--allowed-rules", "train", "train_baseline")
    assert planned_jobs(done.stdout + done.stderr) == {"train_baseline": 1}
    info = json.loads((run / "run.json").read_text())
    assert info["model"] == "ials" and info["backend"] == "none" and info["implicit_device"] == "cpu"
    saved = torch.load(run / "model.pt", weights_only=True)
    assert saved["state"]["item_factors"].shape == (len(saved["track_ids"]), 4)
    assert json.loads(saved["config"])["alpha"] == 10.0  # the declared default, filled in
    bad = {**config, "models": {"ials": {"factor": 4}}}
    out = run_workflow(tmp_path, bad, "-n", check=False)
    assert out.returncode != 0 and re.search(r"factor", out.stdout + out.stderr)


@pytest.mark.slow
def test_ials_beats_popularity_on_the_synthetic_warm_split(tmp_path):
    """The default synthetic dataset (its listening log only: no audio is needed), warm
    protocol: iALS with its default settings above pop on mean per-user test NDCG@K."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["models"] = {"pop": {}, "ials": {}}
    runs = ("pop", "ials")
    files = [f"results/synthetic/runs/{m}/none/seed0/metrics_test.parquet" for m in runs]
    run_workflow(tmp_path, config, "--cores", "2", *files, timeout=1800)
    ndcg = {m: pl.read_parquet(tmp_path / f)["ndcg"].mean() for m, f in zip(runs, files, strict=True)}
    assert ndcg["ials"] > ndcg["pop"], ndcg


@pytest.mark.parametrize("model", ["content2cf", "contrastive"])
def test_content_models_build_the_ials_run_first_and_read_its_factors(tmp_path, model):
    write_inputs(tmp_path)
    config = {
        **CONFIG,
        "models": {"ials": {"factors": 4, "iterations": 3}, model: {"hidden": [8], "epochs": 3, "random_baseline": False}},
    }
    target = f"results/tiny/runs/{model}/emb/seed0/recs_test.parquet"
    done = run_workflow(tmp_path, config, "--cores", "1", target, "--allowed-rules", "train", "train_baseline")
    assert planned_jobs(done.stdout + done.stderr) == {"train_baseline": 2}
    info = json.loads((tmp_path / f"results/tiny/runs/{model}/emb/seed0/run.json").read_text())
    assert info["model"] == model and info["warm_items"] == "predicted"
    # without an `ials` instance the config is refused up front, naming what to add
    alone = {**CONFIG, "models": {model: {}}}
    out = run_workflow(tmp_path, alone, "-n", target, check=False)
    assert out.returncode != 0 and "Add `ials: {}` under `models:`" in out.stdout + out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("model", ["content2cf", "contrastive", "cmf"])
def test_content_models_find_cold_synthetic_tracks_from_audio_and_not_from_random_vectors(tmp_path, model):
    """configs/cold_start.yaml's synthetic-cold, ials + one content model only: the oracle and
    every audio backend rank the cold tracks above random vectors and the ials floor (mean
    per-user test NDCG@K)."""
    from tests.workflow.test_cold_start import merged

    config = merged(yaml.safe_load((ROOT / "config.yaml").read_text()), yaml.safe_load((ROOT / "configs/cold_start.yaml").read_text()))
    config["models"] = {"ials": config["models"]["ials"], model: config["models"][model]}
    config.pop("layer_sweep", None)
    cold = next(d for d, spec in config["datasets"].items() if (spec.get("split") or {}).get("protocol") == "cold_items")
    backends = list(config["backends"])
    runs = ["ials/none", f"{model}/random", *[f"{model}/{b}" for b in backends]]
    files = [f"results/{cold}/runs/{run}/seed0/metrics_test.parquet" for run in runs]
    run_workflow(tmp_path, config, "--cores", "2", *files, timeout=3600)
    ndcg = {run: pl.read_parquet(tmp_path / f)["ndcg"].mean() for run, f in zip(runs, files, strict=True)}
    print(model, ndcg)
    floor = max(ndcg["ials/none"], ndcg[f"{model}/random"])
    for b in backends:
        assert ndcg[f"{model}/{b}"] > floor, ndcg
    assert ndcg[f"{model}/oracle"] > 2 * ndcg[f"{model}/random"], ndcg

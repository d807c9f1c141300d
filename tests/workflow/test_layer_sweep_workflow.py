"""The layer sweep through Snakemake.

Fast test: planted split parts and a planted multi-layer cache, only the KNN training job,
evaluate and the sweep rules allowed: the sweep's configured layer reproduces the KNN run.
Slow test: the tiny synthetic dataset through a tiny MERT saved in its published layout,
then the sweep: changing the sweep (or adding a model to it) never re-plans extraction,
and changing the backend's configured layer re-runs only the gather step.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from audiorec.extraction.store import write_embeddings
from tests.conftest import run_workflow, tiny_config, write_known

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))

K = 5
LAYERS = ["embedding", "layer1", "layer2"]


def planned_jobs(output: str) -> dict[str, int]:
    table = re.search(r"job\s+count\n[-\s]+\n(.*?)\n\s*total", output, re.S)
    jobs = {} if table is None else {m[0]: int(m[1]) for m in re.findall(r"^(\S+)\s+(\d+)$", table.group(1), re.M)}
    jobs.pop("all", None)  # the implicit target job, planned or not depending on how targets are named
    return jobs


def plant(root: Path) -> None:
    """Split parts of users who like one of 3 genres, and a cache whose layer2 hears genres."""
    rng = np.random.default_rng(0)
    split = root / "results/tiny/split"
    split.mkdir(parents=True)
    tracks = [f"t{g}{i:02d}" for g in range(3) for i in range(10)]
    rows: dict[str, list] = {"train": [], "val": [], "test": []}
    for u in range(24):
        g, own = u % 3, rng.permutation(10)
        rows["train"] += [(f"u{u:02d}", f"t{g}{i:02d}", j) for j, i in enumerate(own[:5])]
        rows["val" if u % 2 else "test"] += [(f"u{u:02d}", f"t{g}{i:02d}", 50 + j) for j, i in enumerate(own[5:7])]
    for name, part in rows.items():
        pl.DataFrame(
            {"user_id": [r[0] for r in part], "track_id": [r[1] for r in part],
             "timestamp": [datetime(2019, 6, 1) + timedelta(minutes=r[2]) for r in part], "plays": [1] * len(part)},
            schema={"user_id": pl.String, "track_id": pl.String, "timestamp": pl.Datetime("us"), "plays": pl.Int64},
        ).write_parquet(split / f"{name}.parquet")
    write_known(split)
    genre = np.eye(3)[[int(t[1]) for t in tracks]]
    layers = np.stack([s * genre + 0.5 * rng.standard_normal((30, 3)) for s in (0.0, 0.5, 1.0)], axis=1)
    layers = layers.astype(np.float16).astype(np.float32)  # on the float16 grid: /layers == /embeddings
    (root / "results/tiny/embeddings").mkdir(parents=True)
    attrs = {"layer": "layer1", "layer_names": LAYERS, "layer_dims": [3, 3, 3], "backend_type": "mert"}
    write_embeddings(root / "results/tiny/embeddings/mert.h5", tracks, layers[:, 1], layers=layers, attrs=attrs)


def test_sweep_rules_on_a_planted_cache(tmp_path: Path) -> None:
    plant(tmp_path)
    config = tiny_config(backends={"mert": {"layer": "layer1"}}, models={"knn": {}}, evaluation={"k": K})
    config["layer_sweep"] = {"models": ["knn"]}
    knn = [f"results/tiny/runs/knn/mert/seed0/metrics_{p}.parquet" for p in ("val", "test")]
    done = run_workflow(
        tmp_path, config, "--cores", "2", "results/tiny/report/layer_sweep.md", *knn,
        "--allowed-rules", "layer_sweep", "layer_sweep_report", "train_baseline", "evaluate",
    )
    assert planned_jobs(done.stdout + done.stderr) == {
        "layer_sweep": 1, "layer_sweep_report": 1, "train_baseline": 1, "evaluate": 2,
    }
    sweep = pl.read_parquet(tmp_path / "results/tiny/layer_sweep/knn/mert/seed0/metrics.parquet")
    assert sweep["layer_name"].unique(maintain_order=True).to_list() == [*LAYERS, "mean"]
    for part in ("val", "test"):
        run = pl.read_parquet(tmp_path / f"results/tiny/runs/knn/mert/seed0/metrics_{part}.parquet").sort("user_id")
        own = sweep.filter(pl.col("configured") & (pl.col("split") == part)).sort("user_id")
        for metric in ("hitrate", "recall", "ndcg", "mrr", "precision"):
            assert own[metric].to_list() == run[metric].to_list(), (part, metric)
    summary = pl.read_csv(tmp_path / "results/tiny/report/layer_sweep.csv")
    assert summary.filter(pl.col("best"))["layer_name"].unique().to_list() == ["layer2"]
    text = (tmp_path / "results/tiny/report/layer_sweep.md").read_text()
    assert "**layer2** (#2)" in text and "| layer1 |" in text
    assert (tmp_path / "results/tiny/report/figures/layer_sweep.png").stat().st_size > 5000
    # the sweep's selection keys are not training settings: changing the metric re-runs only the report
    config["layer_sweep"]["metric"] = "hitrate"
    plan = planned_jobs(run_workflow(tmp_path, config, "-n", "results/tiny/report/layer_sweep.md", *knn).stdout)
    assert plan == {"layer_sweep_report": 1}, plan


def test_an_unconfigured_sweep_model_is_refused(tmp_path: Path) -> None:
    config = tiny_config()
    config["layer_sweep"] = {"models": ["bert4rec"]}
    proc = run_workflow(tmp_path, config, "-n", check=False)
    assert proc.returncode != 0 and "layer_sweep.models lists 'bert4rec'" in proc.stdout + proc.stderr
    config["layer_sweep"] = {"models": ["pop"]}
    proc = run_workflow(tmp_path, config, "-n", check=False)
    assert proc.returncode != 0 and "only models of type" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_the_sweep_never_replans_extraction(tmp_path: Path) -> None:
    """Tiny synthetic dataset -> tiny MERT (3 cached layers) -> KNN and its layer sweep."""
    from big_backend_helpers import save_mert

    weights = save_mert(tmp_path / "weights" / "mert")
    mert = {"type": "mert", "weights": str(weights), "local_files_only": True, "device": "cpu", "layer": 1}
    config = tiny_config(backends={"mert": mert}, models={"knn": {}, "shallow": {"epochs": 1, "n_negatives": 3}})
    config["layer_sweep"] = {"models": ["knn"]}
    target = "results/tiny/report/layer_sweep.md"
    run_workflow(tmp_path, config, "--cores", "2", target, "results/tiny/report/metrics.csv", timeout=3600)
    summary = pl.read_csv(tmp_path / "results/tiny/report/layer_sweep.csv")
    assert summary["layer_name"].unique(maintain_order=True).to_list() == ["embedding", "layer1", "layer2", "mean"]
    assert summary.filter(pl.col("configured"))["layer_name"].unique().to_list() == ["layer1"]

    extraction = {"fetch_weights", "embed_shard", "embed", "tracks", "synthesize"}
    # a new sweep setting, and a neural model added to the sweep: sweep jobs only
    config["layer_sweep"] = {"models": ["knn", "shallow"], "metric": "recall"}
    plan = planned_jobs(run_workflow(tmp_path, config, "-n", target).stdout)
    assert plan == {"layer_sweep": 1, "layer_sweep_report": 1}, plan
    # another configured layer: the gather step rewrites /embeddings, nothing is extracted again
    config["backends"]["mert"]["layer"] = 2
    plan = planned_jobs(run_workflow(tmp_path, config, "-n", target).stdout)
    assert not extraction & set(plan) - {"embed"} and plan.get("embed") == 1, plan
    run_workflow(tmp_path, config, "--cores", "2", target, timeout=3600)
    summary = pl.read_csv(tmp_path / "results/tiny/report/layer_sweep.csv")
    assert summary.filter(pl.col("configured"))["layer_name"].unique().to_list() == ["layer2"]


def test_a_trained_model_sweep_has_a_weighted_row(tmp_path: Path) -> None:
    """The Shallow Net swept on the planted cache: every layer, the mean, and the learned
    mixture (`weighted`) with its weights in sweep.json, compared with the best layer."""
    plant(tmp_path)
    shallow = {"epochs": 3, "n_negatives": 3, "batch_size": 32, "random_baseline": False}
    config = tiny_config(backends={"mert": {"layer": "layer1"}}, models={"shallow": shallow}, evaluation={"k": K})
    config["layer_sweep"] = {"models": ["shallow"]}
    run_workflow(
        tmp_path, config, "--cores", "2", "results/tiny/report/layer_sweep.md",
        "--allowed-rules", "layer_sweep", "layer_sweep_report",
    )
    sweep = json.loads((tmp_path / "results/tiny/layer_sweep/shallow/mert/seed0/sweep.json").read_text())
    names = [r["layer_name"] for r in sweep["layers"]]
    assert names == [*LAYERS, "mean", "weighted"]
    weights = sweep["layers"][-1]["layer_weights"]
    assert list(weights) == LAYERS and abs(sum(weights.values()) - 1) < 1e-6
    summary = pl.read_csv(tmp_path / "results/tiny/report/layer_sweep.csv")
    weighted = summary.filter(pl.col("layer_name") == "weighted")
    assert weighted.height == 2 * 5 and not weighted["best"].any()  # val and test x 5 metrics; never "best"
    text = (tmp_path / "results/tiny/report/layer_sweep.md").read_text()
    assert "weighted (learned mixture)" in text and "Δ test (weighted − best)" in text


def test_weighted_layers_refused_for_knn_and_one_layer_backends(tmp_path: Path) -> None:
    config = tiny_config(models={"knn": {"layers": "weighted"}})
    proc = run_workflow(tmp_path, config, "-n", check=False)
    assert proc.returncode != 0 and "models.knn.layers: weighted: a knn model learns nothing" in proc.stdout + proc.stderr
    config = tiny_config(backends={"mfcc": {}}, models={"shallow": {"layers": "weighted"}})
    proc = run_workflow(tmp_path, config, "-n", check=False)
    assert proc.returncode != 0 and "backend 'mfcc' (mfcc) caches one layer" in proc.stdout + proc.stderr


def test_probe_report_reads_the_sweep_table_when_both_are_on(tmp_path: Path) -> None:
    """With probes and the layer sweep on, mir_vs_recs.md waits for layer_sweep.csv (its
    "Best layer: probe vs layer sweep" table); without the sweep it does not."""
    plant(tmp_path)
    config = tiny_config(backends={"mert": {"layer": "layer1"}}, models={"knn": {}}, evaluation={"k": K})
    config["probes"] = {"enable": True}
    target = "results/tiny/report/mir_vs_recs.md"
    assert "layer_sweep_report" not in planned_jobs(run_workflow(tmp_path, config, "-n", target).stdout)
    config["layer_sweep"] = {"models": ["knn"]}
    plan = planned_jobs(run_workflow(tmp_path, config, "-n", target).stdout)
    assert plan.get("layer_sweep_report") == 1 and plan.get("probe_report") == 1, plan

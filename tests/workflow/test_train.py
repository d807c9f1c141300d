"""The train rules on hand-made split parts and embeddings in a temp dir (only train jobs run)."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
import torch
from tests.conftest import ROOT, run_workflow, write_known

from audiorec.extraction.store import write_embeddings

CONFIG = {
    "datasets": {"tiny": {"format": "synthetic"}},
    "backends": {"emb": {"type": "mfcc"}},
    "models": {
        "pop": {},
        "knn": {"random_baseline": True},
        "shallow": {"epochs": 2, "batch_size": 64, "n_negatives": 3},
        "bert4rec": {"epochs": 2, "hidden_size": 8, "max_len": 6, "batch_size": 4},
    },
    "evaluation": {"k": 5},
    "seeds": [0],
}
# one run per rule x input kind (every model x backend is covered by tests/unit/test_models_run.py;
# each job here costs a Python start with torch, several seconds on a shared CPU)
RUNS = ["pop/none", "knn/emb", "shallow/random", "bert4rec/emb"]
OUTPUTS = ["recs_val.parquet", "recs_test.parquet", "history.csv", "model.pt", "run.json"]
TRAIN_ONLY = ("--allowed-rules", "train", "train_baseline")  # last: the option takes every word after it


def write_inputs(root):
    rng = np.random.default_rng(0)
    split_dir = root / "results/tiny/split"
    split_dir.mkdir(parents=True)
    t0 = datetime(2019, 6, 1)
    rows = {"train": [], "val": [], "test": []}
    for u in range(10):
        items = rng.permutation(16)
        rows["train"] += [(f"u{u}", f"t{i:02d}", t0 + timedelta(minutes=j)) for j, i in enumerate(items[:7])]
        rows["val" if u % 2 else "test"] += [(f"u{u}", f"t{i:02d}", t0 + timedelta(minutes=900 + j)) for j, i in enumerate(items[7:9])]
    for name, part in rows.items():
        pl.DataFrame(
            {"user_id": [r[0] for r in part], "track_id": [r[1] for r in part], "timestamp": [r[2] for r in part], "plays": [1] * len(part)},
            schema={"user_id": pl.String, "track_id": pl.String, "timestamp": pl.Datetime("us"), "plays": pl.Int64},
        ).write_parquet(split_dir / f"{name}.parquet")
    write_known(split_dir)
    (root / "results/tiny/embeddings").mkdir(parents=True)
    write_embeddings(root / "results/tiny/embeddings/emb.h5", [f"t{i:02d}" for i in range(16)], rng.standard_normal((16, 4)))


def targets():
    return [f"results/tiny/runs/{run}/seed0/{name}" for run in RUNS for name in OUTPUTS]


def planned_jobs(stdout: str) -> dict[str, int]:
    table = re.search(r"job\s+count\n[-\s]+\n(.*?)\n\s*total", stdout, re.S)
    return {} if table is None else {m[0]: int(m[1]) for m in re.findall(r"^(\S+)\s+(\d+)$", table.group(1), re.M)}


def test_train_rules_run_every_model_and_rerun_only_what_changed(tmp_path):
    write_inputs(tmp_path)
    done = run_workflow(tmp_path, CONFIG, "--cores", "2", *targets(), *TRAIN_ONLY)
    assert planned_jobs(done.stdout + done.stderr) == {"train": 2, "train_baseline": 2}
    for target in targets():
        assert (tmp_path / target).exists(), target
    for run in RUNS:
        folder = tmp_path / "results/tiny/runs" / run / "seed0"
        recs = pl.read_parquet(folder / "recs_test.parquet")
        assert recs.columns == ["user_id", "track_id", "rank", "score"] and recs.height == 5 * 5
        info = json.loads((folder / "run.json").read_text())
        assert info["model"] == run.split("/")[0] and info["k"] == 5
        assert torch.load(folder / "model.pt", weights_only=True)["backend"] == run.split("/")[1]
        assert not (folder / "checkpoint.pt").exists()
        assert (tmp_path / "logs/tiny/train" / run / "seed0.log").exists()

    # nothing to do when nothing changed; a changed shallow setting re-runs only shallow
    assert planned_jobs(run_workflow(tmp_path, None, "-n", *targets(), *TRAIN_ONLY).stdout) == {}
    changed = {**CONFIG, "models": {**CONFIG["models"], "shallow": {**CONFIG["models"]["shallow"], "margin": 0.3}}}
    assert planned_jobs(run_workflow(tmp_path, changed, "-n", *targets(), *TRAIN_ONLY).stdout) == {"train": 1}


def _default_pipeline_available() -> str | None:
    """Why the default pipeline cannot run yet (its other stages land separately), or None."""
    import importlib.util



    if "not written yet" in (ROOT / "scripts/synthesize.py").read_text():
        return "the synthetic dataset generator (scripts/synthesize.py) is not written yet"
    for backend in ("oracle", "musicnn"):
        if importlib.util.find_spec(f"audiorec.backends.{backend}") is None:
            return f"backend {backend} (audiorec.backends.{backend}) is not written yet"
    return None


@pytest.mark.slow
def test_default_pipeline_quality(tmp_path):
    """The issue's quality check on the default synthetic dataset, with the default config:
    with KNN every audio backend beats random vectors and `oracle` beats them all; BERT4Rec
    (its best backend, and `oracle`) beats popularity. Means of per-user test NDCG@50. Then
    the report of the whole pipeline, and `snakemake --report`."""
    import yaml

    reason = _default_pipeline_available()
    if reason:
        pytest.skip(reason)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    audio = [b for b, spec in config["backends"].items() if (spec or {}).get("type", b) != "oracle"]
    runs = ["pop/none", "knn/random", "knn/oracle", *[f"knn/{b}" for b in audio], "bert4rec/oracle", *[f"bert4rec/{b}" for b in [*audio, "random"]]]
    metric_files = [f"results/synthetic/runs/{run}/seed0/metrics_test.parquet" for run in runs]
    run_workflow(tmp_path, config, "--cores", "2", timeout=3600)  # the default target: everything
    ndcg = {run: pl.read_parquet(tmp_path / path)["ndcg"].mean() for run, path in zip(runs, metric_files, strict=True)}
    for b in audio:
        assert ndcg[f"knn/{b}"] > ndcg["knn/random"], ndcg
        assert ndcg["knn/oracle"] > ndcg[f"knn/{b}"], ndcg
    bert = {run: v for run, v in ndcg.items() if run.startswith("bert4rec/")}
    assert max(bert.values()) > ndcg["pop/none"], ndcg
    assert ndcg["bert4rec/oracle"] > ndcg["pop/none"], ndcg

    # the report of the whole default pipeline: every model x backend row, and the HTML report
    report = tmp_path / "results/synthetic/report"
    table3 = (report / "table3.md").read_text()
    for name in ("Pop", "KNN", "ShallowNet", "BERT4Rec", "Oracle", "MFCC", "MusiCNN", "Random"):
        assert name in table3, name
    metrics = pl.read_csv(report / "metrics.csv")
    expected_runs = 1 + len(config["backends"]) + 1 + 2 * (len(config["backends"]) + 1)  # pop; knn (+random); shallow, bert4rec (+random)
    assert metrics.select("model", "backend").unique().height == expected_runs, metrics.select("model", "backend").unique()
    assert metrics["mean"].is_finite().all()
    assert pl.read_csv(report / "significance.csv").height > 0
    assert any((report / "figures").glob("*.png"))
    run_workflow(tmp_path, None, "--report", "report.html")
    assert (tmp_path / "report.html").stat().st_size > 100_000


def _ways_sasrec() -> dict:
    """SASRec as configs/ways.yaml sizes it for the synthetic dataset, read from there so that the
    slow tests and the config cannot drift apart: 30 epochs, batch 64, hidden 64, the output bias
    started at log popularity (a zero bias cannot reach popularity in the few hundred steps of
    these runs), and `targets_ahead: 50` (chosen on val: benchmarks/RESULTS.md, "SASRec's
    training horizon and data size")."""
    import yaml

    return dict(yaml.safe_load((ROOT / "configs/ways.yaml").read_text())["models"]["sasrec"])


def _sasrec_test_metrics(tmp_path, models: dict, runs: list[str], synthetic: dict | None = None) -> dict[str, pl.DataFrame]:
    """The default config cut to the oracle backend and `models` (the synthetic generator's
    `synthetic` settings on top, if given), run through the workflow up to `runs`' test
    metrics; per-user test metrics of each run. Skips while the default pipeline is unwritten."""
    import yaml

    reason = _default_pipeline_available()
    if reason:
        pytest.skip(reason)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    if synthetic:
        config["datasets"]["synthetic"]["synthetic"] = synthetic
    config["backends"] = {"oracle": config["backends"]["oracle"]}
    config["models"] = models
    config["layer_sweep"] = {}
    metric_files = [f"results/synthetic/runs/{run}/seed0/metrics_test.parquet" for run in runs]
    run_workflow(tmp_path, config, "--cores", "2", *metric_files, timeout=3600)
    return {run: pl.read_parquet(tmp_path / path) for run, path in zip(runs, metric_files, strict=True)}


@pytest.mark.slow
def test_sasrec_oracle_content_beats_id(tmp_path):
    """Issue 15: on the default synthetic dataset (warm split, 1,500 users) SASRec with the
    oracle's content (`items: content`) beats SASRec with learned items (`random` = `items: id`):
    means of per-user test NDCG@50 (2026-12-06: 0.0945 against 0.0904, +0.004, paired SE 0.005;
    the same sign on val, +0.007). Learned items only tie popularity at this size (0.0904 against
    0.0915): the test below shows them beating it given more users."""
    metrics = _sasrec_test_metrics(tmp_path, {"sasrec": _ways_sasrec()}, ["sasrec/oracle", "sasrec/random"])
    ndcg = {run: m["ndcg"].mean() for run, m in metrics.items()}
    assert ndcg["sasrec/oracle"] > ndcg["sasrec/random"], ndcg


@pytest.mark.slow
def test_sasrec_learned_items_beat_popularity_given_more_users(tmp_path):
    """Issue 15: SASRec with learned items (`items: id`) beats popularity on the warm synthetic
    split, by more than two standard errors of the paired per-user difference in test NDCG@50.
    The same generator and settings as above with 6,000 users instead of 1,500 (1,385 test
    users): with 1,500 the difference is within noise (−0.001, SE 0.003) and no model tried
    beats popularity there beyond it, iALS included (benchmarks/RESULTS.md). 2026-12-06:
    +0.0105 (SE 0.0031), pop 0.0941, SASRec id 0.1045."""
    metrics = _sasrec_test_metrics(
        tmp_path, {"pop": {}, "sasrec": _ways_sasrec()}, ["pop/none", "sasrec/random"], synthetic={"n_users": 6000}
    )
    paired = metrics["sasrec/random"].join(metrics["pop/none"], on="user_id", suffix="_pop")
    assert paired.height == metrics["pop/none"].height > 1000, paired.height
    diff = (paired["ndcg"] - paired["ndcg_pop"]).to_numpy()
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    assert diff.mean() > 2 * se, {"difference": diff.mean(), "se": se, "pop": paired["ndcg_pop"].mean()}

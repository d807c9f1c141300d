"""Cold-start evaluation through Snakemake: a second dataset entry on the same data.

Fast test: the tiny synthetic dataset and `tiny-cold` (`same_data_as: tiny`,
`protocol: cold_items`) share one generation and one extraction; the cold split holds its
tracks out of train and the runs rank only them. Slow test: configs/cold_start.yaml on the
default-size synthetic dataset, where the audio carries taste, so content models must beat
the floor (`pop`, `random`) on cold tracks.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.conftest import ROOT, run_workflow, tiny_config

COLD = "tiny-cold"


def planned_jobs(output: str) -> dict[str, int]:
    table = re.search(r"job\s+count\n[-\s]+\n(.*?)\n\s*total", output, re.S)
    return {} if table is None else {m[0]: int(m[1]) for m in re.findall(r"^(\S+)\s+(\d+)$", table.group(1), re.M)}


def cold_config() -> dict:
    config = tiny_config(backends={"oracle": {}}, models={"pop": {}, "knn": {"random_baseline": True}})
    config["datasets"][COLD] = {"same_data_as": "tiny", "split": {"protocol": "cold_items", "cold_item_share": 0.2}}
    return config


def test_a_cold_dataset_reuses_the_data_and_ranks_only_held_out_tracks(tmp_path: Path) -> None:
    config = cold_config()
    runs = ["pop/none", "knn/oracle", "knn/random"]
    targets = [f"results/{COLD}/runs/{run}/seed0/metrics_test.parquet" for run in runs]
    full_plan = planned_jobs(run_workflow(tmp_path, config, "-n").stdout)
    # one generation and one extraction serve both datasets; each has its own split and runs
    assert full_plan["synthesize"] == 1 and full_plan["embed"] == 1 and full_plan["split"] == 2
    assert full_plan["train_baseline"] == 2 * len(runs)

    done = run_workflow(tmp_path, None, "--cores", "2", *targets)
    assert planned_jobs(done.stdout + done.stderr)["split"] == 1  # the warm split is not needed here
    assert not (tmp_path / f"results/{COLD}/embeddings").exists()
    split = tmp_path / f"results/{COLD}/split"
    catalogue = pl.read_parquet(split / "catalogue.parquet")
    cold = set(catalogue.filter(pl.col("cold"))["track_id"])
    train = pl.read_parquet(split / "train.parquet")
    asked = pl.concat([pl.read_parquet(split / f"{p}.parquet") for p in ("val", "test")])
    assert cold and cold.isdisjoint(train["track_id"])  # cold items never appear in train
    assert set(asked["track_id"]) <= cold and set(asked["user_id"]) <= set(train["user_id"])
    stats = pl.read_csv(split / "stats.csv")
    assert stats.filter(pl.col("name") == "held_out_tracks")["interactions"][0] > 0
    for run in runs:
        folder = tmp_path / f"results/{COLD}/runs/{run}/seed0"
        recs = pl.read_parquet(folder / "recs_test.parquet")
        assert recs.height and set(recs["track_id"]) <= cold, run
        metrics = pl.read_parquet(folder / "metrics_test.parquet")
        assert metrics.height == asked.filter(pl.col("user_id").is_in(recs["user_id"].implode()))["user_id"].n_unique()
    # the warm dataset's runs are untouched by the cold one: planning them extracts nothing again
    warm = planned_jobs(run_workflow(tmp_path, None, "-n", "results/tiny/runs/knn/oracle/seed0/recs_test.parquet").stdout)
    assert set(warm) <= {"split", "train_baseline", "all"}, warm


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"same_data_as": "nowhere"}, "not another configured dataset"),
        ({"same_data_as": "tiny", "path": "elsewhere"}, "cannot set path"),
        ({"same_data_as": "tiny", "format": "music4all-onion"}, "differs from"),
    ],
)
def test_bad_same_data_as_is_refused_before_any_job(tmp_path: Path, spec: dict, message: str) -> None:
    config = tiny_config()
    config["datasets"]["other"] = spec
    proc = run_workflow(tmp_path, config, "-n", check=False)
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr


def merged(base: dict, overlay: dict) -> dict:
    """`--configfile overlay` on top of the workflow's config.yaml (Snakemake merges recursively)."""
    out = dict(base)
    for key, value in overlay.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.mark.slow
def test_content_models_beat_the_floor_on_cold_tracks(tmp_path: Path) -> None:
    """configs/cold_start.yaml, KNN only: on the synthetic dataset's cold tracks, the oracle and
    every audio backend beat pop and random vectors (mean per-user test NDCG@K)."""
    config = merged(yaml.safe_load((ROOT / "config.yaml").read_text()), yaml.safe_load((ROOT / "configs" / "cold_start.yaml").read_text()))
    cold = next(d for d, spec in config["datasets"].items() if (spec.get("split") or {}).get("protocol") == "cold_items")
    backends = list(config["backends"])
    runs = ["pop/none", "knn/random", *[f"knn/{b}" for b in backends]]
    files = [f"results/{cold}/runs/{run}/seed0/metrics_test.parquet" for run in runs]
    run_workflow(tmp_path, config, "--cores", "2", *files, timeout=3600)
    ndcg = {run: pl.read_parquet(tmp_path / f)["ndcg"].mean() for run, f in zip(runs, files, strict=True)}
    floor = max(ndcg["pop/none"], ndcg["knn/random"])
    for b in backends:
        assert ndcg[f"knn/{b}"] > floor, ndcg

"""Beyond accuracy through Snakemake on the tiny dataset (warm) and `tiny-cold` (cold items).

The new metrics come from files the workflow already writes: with every run finished and
only the beyond-accuracy outputs missing (the state of a results tree made before they
existed), the plan holds evaluate_beyond, evaluate_artists and the reports, no training.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import run_workflow, tiny_config
from tests.workflow.test_cold_start import COLD, planned_jobs

RUNS = ("pop/none", "knn/oracle", "artist_mean/oracle", "artist_mean/random")


def beyond_config() -> dict:
    config = tiny_config(
        backends={"oracle": {}},
        models={"pop": {}, "knn": {}, "artist_mean": {}},  # artist_mean runs `random` too (schema default)
        report={"n_permutations": 500},
    )
    config["datasets"][COLD] = {"same_data_as": "tiny", "split": {"protocol": "cold_items", "cold_item_share": 0.2}}
    return config


@pytest.mark.slow
def test_beyond_accuracy_columns_groups_and_artist_split_without_retraining(tmp_path: Path) -> None:
    run_workflow(tmp_path, beyond_config(), "--cores", "2")
    warm, cold = (tmp_path / "results" / d / "report" for d in ("tiny", COLD))

    # beside the accuracy metrics, tested alike; the synthetic genres give a diversity column
    metrics = pl.read_csv(warm / "metrics.csv")
    assert {"novelty", "arp", "pop_lift", "diversity"} <= set(metrics["metric"].to_list())
    assert not metrics["mean"].is_nan().any()
    sig = pl.read_csv(warm / "significance.csv")
    assert {"novelty", "diversity"} <= set(sig["metric"].to_list())
    beyond = pl.read_csv(warm / "beyond.csv")
    assert len(beyond) == 2 * len(RUNS) and beyond["coverage"].is_between(0, 1).all()
    md = (warm / "table3.md").read_text()
    for heading in ("## Beyond accuracy", "Diversity@10", "## User groups — mainstream vs niche", "## User groups — light vs heavy"):
        assert heading in md
    assert (warm / "figures" / "accuracy_vs_novelty.png").stat().st_size > 10_000
    # under the warm protocol nothing is cold: artist_mean is KNN
    runs = tmp_path / "results" / "tiny" / "runs"
    assert pl.read_parquet(runs / "artist_mean/oracle/seed0/recs_test.parquet").drop("score").equals(
        pl.read_parquet(runs / "knn/oracle/seed0/recs_test.parquet").drop("score")
    )

    # the cold report splits every model and backend by the target's artist
    groups = pl.read_csv(cold / "groups.csv").filter((pl.col("grouping") == "artist") & (pl.col("split") == "test"))
    assert {"seen_artist", "new_artist"} <= set(groups["group"].to_list())
    for group in ("seen_artist", "new_artist"):
        own = groups.filter(pl.col("group") == group)
        assert {f"{m}/{b}" for m, b in own.select("model", "backend").unique().rows()} == set(RUNS), group
    cold_md = (cold / "table3.md").read_text()
    assert "## Artist-aware cold start" in cold_md and "seen artist" in cold_md and "new artist" in cold_md
    info = (tmp_path / "results" / COLD / "runs" / "artist_mean/oracle/seed0/run.json").read_text()
    assert '"n_cold_items_seen_artist"' in info

    # A results tree from before the beyond-accuracy metrics: no beyond files, and reports that
    # re-run (their script and inputs changed; removed here, since Snakemake does not rebuild
    # a deleted intermediate file for an up-to-date consumer). Only they and the reports run.
    removed = [p for p in (tmp_path / "results").rglob("*") if p.name.startswith(("beyond_", "artist_metrics_"))]
    assert removed
    for path in removed:
        path.unlink()
    for report in (warm, cold):
        shutil.rmtree(report)
    plan = planned_jobs(run_workflow(tmp_path, None, "-n").stdout)
    n_runs = 2 * len(RUNS)
    assert plan == {
        "evaluate_beyond": 2 * n_runs,
        "evaluate_artists": n_runs,
        "report": 2,
        "gains": 1,  # warm next to cold (its outputs sit in the removed warm report folder)
        "all": 1,
    }, plan

"""Rule gains: planned only for a warm dataset with a cold_items sibling, and run on a fake
results tree (per-user metrics of both datasets planted) it writes gains.csv and the figure."""

from __future__ import annotations

import os
import re
from pathlib import Path

import polars as pl
from fake_report_tree import K, fake_config, write_fake_tree

from audiorec.evaluation.metrics import per_user_metrics
from tests.conftest import ROOT, run_workflow

WARM, COLD = "onion", "onion-cold"


def _plant(tmp_path: Path) -> dict:
    raw = tmp_path / "resources" / WARM
    (raw / "audios").mkdir(parents=True)
    (raw / "userid_trackid_timestamp.tsv").write_text("user_id\ttrack_id\ttimestamp\n")
    os.utime(raw / "userid_trackid_timestamp.tsv", (1e9, 1e9))
    for dataset, seed in ((WARM, 0), (COLD, 1)):
        write_fake_tree(tmp_path, dataset, seed=seed)
        split = tmp_path / "results" / dataset / "split"
        for recs in (tmp_path / "results" / dataset / "runs").rglob("recs_test.parquet"):
            truth = pl.read_parquet(split / "test.parquet")
            per_user_metrics(pl.read_parquet(recs), truth, K).write_parquet(recs.with_name("metrics_test.parquet"))
    config = fake_config(WARM, str(raw))
    config["datasets"][COLD] = {"same_data_as": WARM, "split": {"protocol": "cold_items"}}
    return config


def test_gains_of_a_warm_dataset_and_its_cold_sibling(tmp_path):
    config = _plant(tmp_path)
    target = f"results/{WARM}/report/gains.csv"
    proc = run_workflow(tmp_path, config, target, "--cores", "1", "--allowed-rules", "gains")
    jobs = [j for j in re.findall(r"^(?:local)?rule (\w+):", proc.stdout + proc.stderr, flags=re.MULTILINE) if j != "all"]
    assert jobs == ["gains"]
    gains = pl.read_csv(tmp_path / target)
    ndcg = gains.filter(pl.col("metric") == "ndcg")
    # the fake tree's shallow has mfcc, musicnn and random (items: id); knn has no id version
    assert sorted(ndcg.select("protocol", "backend").rows()) == [(p, b) for p in ("cold", "warm") for b in ("mfcc", "musicnn")]
    assert set(ndcg["base_backend"]) == {"random"} and set(ndcg["way"]) == {"content"}
    assert (ndcg["ci_low"] < ndcg["gain"]).all() and (ndcg["gain"] < ndcg["ci_high"]).all()
    assert (ndcg["gain"] > 0).all()  # planted: shallow/musicnn and mfcc hit far more than random
    assert (tmp_path / f"results/{WARM}/report/figures/gains.png").stat().st_size > 10_000


def test_gains_are_planned_only_with_a_cold_sibling(tmp_path):
    config = _plant(tmp_path)
    plan = run_workflow(tmp_path, config, "-n").stdout
    assert re.search(rf"rule gains:\n(.*\n)*?\s+output: results/{WARM}/report/gains.csv", plan)
    assert f"results/{COLD}/report/gains.csv" not in plan
    del config["datasets"][COLD]
    assert "rule gains" not in run_workflow(tmp_path, config, "-n").stdout
    out = run_workflow(tmp_path, config, "-n", f"results/{WARM}/report/gains.csv", check=False)
    assert out.returncode != 0 and f"same_data_as: {WARM}" in out.stdout + out.stderr


def test_the_report_rules_do_not_see_the_gains_resamples():
    """Changing report.bootstrap_resamples re-runs rule gains only (report and errata_report get
    the report settings without it)."""
    text = (ROOT / "rules" / "report.smk").read_text() + (ROOT / "rules" / "errata.smk").read_text()
    assert 'report=config["report"]' not in text and text.count("report=report_settings_params()") == 2

"""rule evaluate + rule report on a fake results tree, then `snakemake --report`.

Upstream stages are stood in for by files (tests/workflow/fake_report_tree.py); only the
evaluate and report rules may run (`--allowed-rules`), and the test checks that none of
the planted files was rewritten.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import polars as pl
import pytest
from fake_report_tree import HIT_RATES, K, SEEDS, fake_config, write_fake_tree

from audiorec.evaluation.beyond import catalogue_metrics, per_user_beyond
from audiorec.evaluation.metrics import per_user_metrics
from tests.conftest import run_workflow

DATASET = "onion"
RULES = ("evaluate", "evaluate_beyond", "report")
REPORT = Path("results") / DATASET / "report"


def _digest(root: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted((root / "results").rglob("*"))
        if p.is_file()
    }


def _cells(md: str, *needles: str) -> list[str]:
    for line in md.splitlines():
        if all(n in line for n in needles):
            return [c.strip() for c in line.strip("|").split("|")]
    raise AssertionError(f"no line with {needles} in\n{md}")


def _plant(tmp_path: Path) -> dict:
    raw = tmp_path / "resources" / DATASET
    (raw / "audios").mkdir(parents=True)
    (raw / "userid_trackid_timestamp.tsv").write_text("user_id\ttrack_id\ttimestamp\n")
    os.utime(raw / "userid_trackid_timestamp.tsv", (1e9, 1e9))  # older than every planted result
    write_fake_tree(tmp_path, DATASET)
    return fake_config(DATASET, str(raw))


def _run(tmp_path: Path, config: dict) -> list[str]:
    """Build the report allowing only evaluate and report; the jobs that ran."""
    before = _digest(tmp_path)
    proc = run_workflow(
        tmp_path, config, "--cores", "2", "--allowed-rules", *RULES, str(REPORT / "metrics.csv")
    )
    after = _digest(tmp_path)
    assert {p: after[p] for p in before} == before, "planted files were rewritten"
    # `all` is the implicit target job snakemake adds for targets named on the command line.
    return [j for j in re.findall(r"^(?:local)?rule (\w+):", proc.stdout + proc.stderr, flags=re.M) if j != "all"]


def test_report_rule_and_one_evaluate_job(tmp_path):
    """Fast: all but one run's metrics (and beyond-accuracy metrics) are computed in-process, so
    Snakemake runs one evaluate, one evaluate_beyond and the report."""
    config = _plant(tmp_path)
    runs = tmp_path / "results" / DATASET / "runs"
    split = tmp_path / "results" / DATASET / "split"
    missing = runs / "knn" / "mfcc" / "seed0" / "metrics_val.parquet"
    train, catalogue = pl.read_parquet(split / "train.parquet"), pl.read_parquet(split / "catalogue.parquet")
    for recs in runs.rglob("recs_*.parquet"):
        part = recs.stem.removeprefix("recs_")
        truth = pl.read_parquet(split / f"{part}.parquet")
        if recs.with_name(f"metrics_{part}.parquet") != missing:
            per_user_metrics(pl.read_parquet(recs), truth, K).write_parquet(recs.with_name(f"metrics_{part}.parquet"))
        if recs.parent.parent.name != "musicnn" or recs.parent.name != "seed1":
            per_user_beyond(pl.read_parquet(recs), truth, train, K).write_parquet(recs.with_name(f"beyond_{part}.parquet"))
            run = catalogue_metrics(pl.read_parquet(recs), truth, catalogue, K)
            pl.DataFrame([{"k": K, **run}]).write_csv(recs.with_name(f"beyond_run_{part}.csv"))
    jobs = _run(tmp_path, config)
    # knn and shallow each have a musicnn seed1 run: their 2 parts x 2 runs are left to Snakemake
    assert sorted(jobs) == ["evaluate"] + ["evaluate_beyond"] * 4 + ["report"]
    truth = pl.read_parquet(tmp_path / "results" / DATASET / "split" / "val.parquet")
    expected = per_user_metrics(pl.read_parquet(missing.with_name("recs_val.parquet")), truth, K)
    assert pl.read_parquet(missing).equals(expected)
    _check_report(tmp_path)


@pytest.mark.slow
def test_evaluate_and_report_on_a_fake_results_tree(tmp_path):
    """Every run evaluated by Snakemake (24 evaluate jobs: about a minute on 2 busy cores)."""
    config = _plant(tmp_path)
    jobs = _run(tmp_path, config)
    n_runs = sum(len(b) for b in HIT_RATES.values()) * len(SEEDS)
    assert sorted(set(jobs)) == ["evaluate", "evaluate_beyond", "report"]
    assert jobs.count("evaluate") == jobs.count("evaluate_beyond") == 2 * n_runs
    _check_report(tmp_path)


def _check_report(tmp_path: Path) -> None:
    # Per-user metrics: every user of the part, nothing else.
    truth = pl.read_parquet(tmp_path / "results" / DATASET / "split" / "test.parquet")
    one = pl.read_parquet(tmp_path / "results" / DATASET / "runs/shallow/musicnn/seed1/metrics_test.parquet")
    assert sorted(one["user_id"].to_list()) == sorted(truth["user_id"].unique().to_list())
    assert one["n_recs"].to_list() == [K] * len(one)

    # metrics.csv: the mean is the mean over users of the per-user mean over seeds.
    metrics = pl.read_csv(tmp_path / REPORT / "metrics.csv")
    seeds = [
        pl.read_parquet(tmp_path / "results" / DATASET / f"runs/knn/mfcc/seed{s}/metrics_val.parquet") for s in SEEDS
    ]
    expected = pl.concat(seeds).group_by("user_id").agg(pl.col("ndcg").mean())["ndcg"].mean()
    row = metrics.filter(
        (pl.col("model") == "knn") & (pl.col("backend") == "mfcc") & (pl.col("split") == "val")
        & (pl.col("metric") == "ndcg")
    ).row(0, named=True)  # fmt: skip
    assert abs(row["mean"] - expected) < 1e-12
    assert (row["k"], row["n_users"], row["n_seeds"]) == (K, len(seeds[0]), len(SEEDS))
    assert row["ci_low"] < row["mean"] < row["ci_high"]
    hr = {
        (r["model"], r["backend"]): r["mean"]
        for r in metrics.filter((pl.col("split") == "test") & (pl.col("metric") == "hitrate")).iter_rows(named=True)
    }
    assert hr["shallow", "musicnn"] > hr["shallow", "mfcc"] > hr["shallow", "random"]

    sig = pl.read_csv(tmp_path / REPORT / "significance.csv")
    base = sig.filter((pl.col("model") == "shallow") & (pl.col("family") == "baseline"))
    assert set(base["backend_b"].to_list()) == {"random"}
    assert set(sig["test"].to_list()) == {"sign_flip", "paired_t"}
    assert set(sig["family"].to_list()) == {"baseline", "floor", "pairs"}
    strong = base.filter(
        (pl.col("backend_a") == "musicnn") & (pl.col("metric") == "hitrate") & (pl.col("split") == "test")
    )
    assert (strong["p_adjusted"] < 0.05).all() and (strong["mean_diff"] > 0).all()

    md = (tmp_path / REPORT / "table3.md").read_text()
    test_table = md.split("## Table 3 — test split")[1].split("## Table 3 — validation")[0]
    shallow_musicnn = _cells(test_table.split("**ShallowNet**")[1], "MusiCNN")
    assert shallow_musicnn[2] == "content"  # the Items column: how the run used the audio vectors
    assert shallow_musicnn[3].startswith(f"{hr['shallow', 'musicnn']:.3f}") and shallow_musicnn[3].endswith("▲")
    assert "K=50; this run uses K=5" in md  # the paper's Table 3 is at K=50: not shown
    assert "6,092" in _cells(md.split("## Table 2")[1], "| val |")  # the paper's Table 2 beside ours
    assert "0.906" in _cells(md.split("## Table 4")[1], "MusiCNN")
    assert "tracks dropped: mfcc 2" in md  # a backend that ranked without some tracks says so
    runs = pl.read_csv(tmp_path / REPORT / "runs.csv")
    assert runs.height == sum(len(b) for b in HIT_RATES.values()) * len(SEEDS)
    assert set(runs.filter(pl.col("backend") == "mfcc")["n_candidates_dropped_no_vector"]) == {2}
    assert set(runs.filter(pl.col("backend") != "mfcc")["n_candidates_dropped_no_vector"]) == {0}
    for png in ("metrics_test", "metrics_val", "per_user_test", "per_user_val", "mir_vs_recs"):
        assert (tmp_path / REPORT / "figures" / f"{png}.png").stat().st_size > 10_000

    # Nothing left to do, and the HTML report builds with every item and its caption.
    _check_beyond(tmp_path)
    dry = run_workflow(tmp_path, None, "-n", "--allowed-rules", *RULES, str(REPORT / "metrics.csv"))
    assert "Nothing to be done" in dry.stdout + dry.stderr
    run_workflow(tmp_path, None, "--report", "report.html", str(REPORT / "metrics.csv"))
    html = (tmp_path / "report.html").read_text()
    for item in ("metrics_test.png", "per_user_val.png", "mir_vs_recs.png", "table3.md", "significance.csv", "runs.csv",
                 "accuracy_vs_novelty.png", "groups.csv", "beyond.csv"):
        assert item in html
    for caption in ("Student-t intervals over users", "Holm-corrected", "share of users", "GiantSteps key", "95% Wilson"):
        assert caption in html


def _check_beyond(tmp_path: Path) -> None:
    """The beyond-accuracy columns sit beside the accuracy ones, tested the same way; groups and figure."""
    report = tmp_path / REPORT
    metrics = pl.read_csv(report / "metrics.csv")
    # The fake dataset has no genre labels: no diversity; the other beyond metrics for every run.
    assert {"novelty", "arp", "pop_lift"} <= set(metrics["metric"].to_list())
    assert "diversity" not in metrics["metric"].to_list()
    runs = tmp_path / "results" / DATASET / "runs" / "shallow" / "mfcc"
    seeds = [pl.read_parquet(runs / f"seed{s}" / "beyond_test.parquet") for s in SEEDS]
    expected = pl.concat(seeds).group_by("user_id").agg(pl.col("novelty").mean())["novelty"].mean()
    row = metrics.filter(
        (pl.col("model") == "shallow") & (pl.col("backend") == "mfcc") & (pl.col("split") == "test")
        & (pl.col("metric") == "novelty")
    ).row(0, named=True)  # fmt: skip
    assert abs(row["mean"] - expected) < 1e-12
    sig = pl.read_csv(report / "significance.csv")
    assert len(sig.filter((pl.col("metric") == "novelty") & (pl.col("family") == "baseline")))
    beyond = pl.read_csv(report / "beyond.csv")
    assert len(beyond) == 2 * sum(len(b) for b in HIT_RATES.values())
    assert beyond["coverage"].is_between(0, 1).all() and beyond["gini"].is_between(0, 1).all()
    groups = pl.read_csv(report / "groups.csv")
    assert set(groups["grouping"].to_list()) == {"mainstream", "activity"}
    assert set(groups["group"].to_list()) == {"niche", "middle", "mainstream", "light", "medium", "heavy"}
    n = groups.filter(
        (pl.col("grouping") == "mainstream") & (pl.col("split") == "test") & (pl.col("model") == "pop")
        & (pl.col("metric") == "ndcg")
    )  # fmt: skip
    assert sum(n["n_users"].to_list()) == metrics.filter(
        (pl.col("split") == "test") & (pl.col("model") == "pop") & (pl.col("metric") == "ndcg")
    )["n_users"][0]
    gsig = pl.read_csv(report / "groups_significance.csv")
    assert set(gsig["family"].to_list()) == {"baseline", "floor"}
    md = (report / "table3.md").read_text()
    assert "## Beyond accuracy — test split" in md and "Novelty@5" in md and "Coverage@5" in md
    assert "## User groups — mainstream vs niche" in md and "no diversity column" in md
    assert (report / "figures" / "accuracy_vs_novelty.png").stat().st_size > 10_000

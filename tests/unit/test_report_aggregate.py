"""Report aggregation: run collection, seed averaging, metrics.csv and significance.csv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import DescrStatsW

from audiorec.evaluation.metrics import METRICS
from audiorec.report.aggregate import Catalogue, ReportSettings, baselines, compare, summarise
from audiorec.report.collect import load_per_user, parse_run_file, seed_average

CATALOGUE = Catalogue(
    model_types={"pop": "pop", "knn": "knn", "shallow": "shallow"},
    backend_types={"mfcc": "mfcc", "musicnn": "musicnn"},
)
RUNS = {"pop": ["none"], "knn": ["mfcc", "musicnn"], "shallow": ["mfcc", "musicnn", "random"]}
# mean of every metric per run: shallow/musicnn clearly best, shallow/random clearly worst,
# knn/musicnn best of knn on validation.
LEVEL = {
    ("pop", "none"): 0.10,
    ("knn", "mfcc"): 0.12,
    ("knn", "musicnn"): 0.20,
    ("shallow", "mfcc"): 0.30,
    ("shallow", "musicnn"): 0.50,
    ("shallow", "random"): 0.05,
}


def write_runs(root: Path, n_users: int = 30, seeds=(0, 1), runs=RUNS, level=LEVEL) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    users = [f"u{i:03d}" for i in range(n_users)]
    for model, backends in runs.items():
        for backend in backends:
            for seed in seeds:
                for split in ("val", "test"):
                    base = level[model, backend]
                    frame = pl.DataFrame(
                        {"user_id": users, **{m: np.clip(base + 0.1 * rng.standard_normal(n_users), 0, 1) for m in METRICS}}
                    )
                    path = root / "runs" / model / backend / f"seed{seed}" / f"metrics_{split}.parquet"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    frame.sample(fraction=1.0, shuffle=True, seed=seed).write_parquet(path)
                    paths.append(path)
    return paths


@pytest.fixture
def runs(tmp_path):
    return write_runs(tmp_path)


@pytest.fixture
def averaged(runs):
    return seed_average(load_per_user(runs))


SETTINGS = ReportSettings(k=50, n_permutations=2000)


def test_parse_run_file():
    run = parse_run_file("results/d/runs/knn/mert-330m/seed12/metrics_test.parquet")
    assert (run.model, run.backend, run.seed, run.split) == ("knn", "mert-330m", 12, "test")
    with pytest.raises(ValueError, match="not a run metrics file"):
        parse_run_file("results/d/runs/knn/mfcc/metrics_test.parquet")


def test_seed_average_means_per_user(runs, averaged):
    raw = load_per_user(runs)
    one = raw.filter((pl.col("model") == "knn") & (pl.col("backend") == "mfcc") & (pl.col("split") == "test"))
    expected = one.group_by("user_id").agg(pl.col("ndcg").mean()).sort("user_id")
    got = averaged.filter((pl.col("model") == "knn") & (pl.col("backend") == "mfcc") & (pl.col("split") == "test"))
    np.testing.assert_allclose(got.sort("user_id")["ndcg"].to_numpy(), expected["ndcg"].to_numpy())
    assert set(averaged["n_seeds"].to_list()) == {2}


def test_seed_average_rejects_mismatched_users(tmp_path):
    paths = write_runs(tmp_path, runs={"knn": ["mfcc"]})
    stale = pl.read_parquet(paths[0]).head(20)
    stale.write_parquet(paths[0])
    with pytest.raises(ValueError, match="different sets of users"):
        seed_average(load_per_user(paths))


def test_load_rejects_nan_and_missing_columns(tmp_path):
    paths = write_runs(tmp_path, runs={"knn": ["mfcc"]}, seeds=(0,))
    pl.read_parquet(paths[0]).with_columns(pl.lit(float("nan")).alias("ndcg")).write_parquet(paths[0])
    with pytest.raises(ValueError, match="null/NaN"):
        load_per_user(paths)
    pl.read_parquet(paths[0]).drop("mrr").write_parquet(paths[0])
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['mrr'\]"):
        load_per_user(paths)


def test_summary_matches_statsmodels(averaged):
    summary = summarise(averaged, SETTINGS, CATALOGUE)
    assert summary.columns == [
        "model", "backend", "split", "metric", "k", "mean", "ci_low", "ci_high", "n_users", "n_seeds"
    ]  # fmt: skip
    assert len(summary) == 6 * 2 * len(METRICS)
    values = averaged.filter(
        (pl.col("model") == "shallow") & (pl.col("backend") == "random") & (pl.col("split") == "val")
    )["recall"].to_numpy()
    row = summary.filter(
        (pl.col("model") == "shallow") & (pl.col("backend") == "random") & (pl.col("split") == "val")
        & (pl.col("metric") == "recall")
    ).row(0, named=True)  # fmt: skip
    low, high = DescrStatsW(values).tconfint_mean(alpha=0.05)
    assert row["mean"] == pytest.approx(values.mean())
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))
    assert (row["n_users"], row["n_seeds"], row["k"]) == (30, 2, 50)
    # Config order: pop, knn, shallow; backends mfcc, musicnn, then random.
    assert summary.unique("model", maintain_order=True)["model"].to_list() == ["pop", "knn", "shallow"]
    shallow = summary.filter(pl.col("model") == "shallow").unique("backend", maintain_order=True)
    assert shallow["backend"].to_list() == ["mfcc", "musicnn", "random"]


def test_baselines(averaged):
    summary = summarise(averaged, SETTINGS, CATALOGUE)
    base = baselines(summary, SETTINGS, CATALOGUE)
    assert all(base["shallow", m] == "random" for m in METRICS)
    assert all(base["knn", m] == "musicnn" for m in METRICS)
    assert ("pop", "ndcg") not in base
    override = ReportSettings(baselines={"shallow": "mfcc"})
    assert baselines(summary, override, CATALOGUE)["shallow", "ndcg"] == "mfcc"
    with pytest.raises(ValueError, match=r"report.baselines.knn = 'random'"):
        baselines(summary, ReportSettings(baselines={"knn": "random"}), CATALOGUE)


def test_significance_rows_tests_and_holm(averaged):
    summary = summarise(averaged, SETTINGS, CATALOGUE)
    sig = compare(averaged, summary, SETTINGS, CATALOGUE)
    assert sig.columns[:12] == [
        "model", "split", "metric", "backend_a", "backend_b", "mean_diff", "ci_low", "ci_high",
        "effect_size", "test", "p_value", "p_adjusted",
    ]  # fmt: skip
    one = sig.filter((pl.col("model") == "shallow") & (pl.col("split") == "test") & (pl.col("metric") == "ndcg"))
    fam = {f: one.filter((pl.col("family") == f) & (pl.col("test") == "paired_t")) for f in ("baseline", "floor", "pairs")}
    assert sorted(fam["baseline"].select("backend_a", "backend_b").rows()) == [("mfcc", "random"), ("musicnn", "random")]
    assert sorted(fam["floor"]["backend_a"].to_list()) == ["mfcc", "musicnn", "random"]
    assert set(fam["floor"]["backend_b"].to_list()) == {"pop"}
    assert len(fam["pairs"]) == 3
    assert one["p_value"].null_count() == 0 and one["p_adjusted"].null_count() == 0
    # Paired t against scipy on the seed-averaged vectors.
    vec = {
        b: averaged.filter(
            (pl.col("model") == "shallow") & (pl.col("backend") == b) & (pl.col("split") == "test")
        ).sort("user_id")["ndcg"].to_numpy()
        for b in ("mfcc", "musicnn", "random")
    }
    row = fam["baseline"].filter(pl.col("backend_a") == "mfcc").row(0, named=True)
    assert row["p_value"] == pytest.approx(sps.ttest_rel(vec["mfcc"], vec["random"]).pvalue)
    d = vec["mfcc"] - vec["random"]
    assert row["mean_diff"] == pytest.approx(d.mean())
    assert row["effect_size"] == pytest.approx(d.mean() / d.std(ddof=1))
    # Holm within each family, per test.
    for family in fam.values():
        np.testing.assert_allclose(
            family["p_adjusted"].to_numpy(), multipletests(family["p_value"].to_numpy(), method="holm")[1]
        )
    flips = one.filter((pl.col("family") == "baseline") & (pl.col("test") == "sign_flip"))
    np.testing.assert_allclose(flips["p_adjusted"].to_numpy(), multipletests(flips["p_value"].to_numpy(), method="holm")[1])
    # Planted effects are found by both tests.
    assert (fam["baseline"]["p_adjusted"] < 0.05).all()
    assert (flips["p_adjusted"] < 0.05).all()
    # knn is tested against its best validation backend; pop is no model block.
    knn = sig.filter((pl.col("model") == "knn") & (pl.col("family") == "baseline"))
    assert set(knn["backend_b"].to_list()) == {"musicnn"}
    assert sig.filter(pl.col("model") == "pop").is_empty()


def test_significance_is_seeded_and_local_to_its_model(runs, tmp_path):
    averaged = seed_average(load_per_user(runs))
    summary = summarise(averaged, SETTINGS, CATALOGUE)
    first = compare(averaged, summary, SETTINGS, CATALOGUE)
    assert first.equals(compare(averaged, summary, SETTINGS, CATALOGUE))
    other_seed = compare(averaged, summary, ReportSettings(k=50, n_permutations=2000, seed=1), CATALOGUE)
    flip = pl.col("test") == "sign_flip"
    assert not first.filter(flip)["p_value"].equals(other_seed.filter(flip)["p_value"])
    # Dropping the knn runs leaves shallow's p-values as they were.
    without_knn = averaged.filter(pl.col("model") != "knn")
    sub = compare(without_knn, summarise(without_knn, SETTINGS, CATALOGUE), SETTINGS, CATALOGUE)
    shallow = pl.col("model") == "shallow"
    assert sub.filter(shallow).equals(first.filter(shallow))


def test_from_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown setting"):
        ReportSettings.from_config({"alpah": 0.1}, k=10)
    with pytest.raises(ValueError, match="report.test"):
        ReportSettings.from_config({"test": "wilcoxon"}, k=10)
    assert ReportSettings.from_config({"alpha": 0.01}, k=10).alpha == 0.01


def test_schema_defaults_match_report_settings(repo_root):
    """The schema documents the defaults the workflow fills in; the library's must agree."""
    import yaml

    schema = yaml.safe_load((repo_root / "schemas" / "config.schema.yaml").read_text())
    report = schema["properties"]["report"]
    assert report["additionalProperties"] is False
    defaults = ReportSettings()
    for key, spec in report["properties"].items():
        assert "description" in spec, key
        assert spec["default"] == getattr(defaults, key), key
    assert set(report["properties"]) == set(ReportSettings.__dataclass_fields__) - {"k"}
    evaluation = schema["properties"]["evaluation"]
    assert evaluation["additionalProperties"] is False
    assert evaluation["properties"]["k"]["default"] == defaults.k


def test_report_imports_without_torch(repo_root):
    """rule report runs in envs/core.yaml, which has no torch."""
    import subprocess
    import sys

    code = "import sys, audiorec.report.build, audiorec.report.figures; assert 'torch' not in sys.modules"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(repo_root / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr

"""The report's Errata section on planted per-user metrics: fixed - erratum per user (seed-averaged),
paired tests against scipy, Holm over the pairs of a metric, a cross-split pair over the users both
splits evaluate, and errors for stale runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps

from audiorec.evaluation.metric_names import METRICS
from audiorec.report.aggregate import ReportSettings
from audiorec.report.errata import ErratumPair, RunRef, build_errata, compare_errata, load_runs, run_of

SETTINGS = ReportSettings(k=10, n_permutations=2000)


def write_metrics(root: Path, dataset: str, model: str, backend: str, seed: int, split: str, users: list[str], values: dict[str, np.ndarray]) -> Path:
    path = root / "results" / dataset / "runs" / model / backend / f"seed{seed}" / f"metrics_{split}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"user_id": users, **{m: values[m] for m in METRICS}}).write_parquet(path)
    return path


def planted(root: Path) -> tuple[list[Path], dict]:
    """Runs knn/a (fixed) and knn/a-bug (erratum) on dataset d, two seeds, 30 users; knn/a on
    d-hist (another split of the same data) with 20 users, 10 of them shared with d."""
    rng = np.random.default_rng(1)
    files, truth = [], {}
    users = [f"u{i:02d}" for i in range(30)]
    for split in ("val", "test"):
        base = {m: rng.uniform(0, 1, size=(2, 30)) for m in METRICS}
        drop = {m: rng.uniform(0, 0.2, size=(2, 30)) for m in METRICS}  # the erratum loses 0..0.2
        for seed in (0, 1):
            files.append(write_metrics(root, "d", "knn", "a", seed, split, users, {m: base[m][seed] for m in METRICS}))
            files.append(write_metrics(root, "d", "knn", "a-bug", seed, split, users[::-1],  # any row order
                                       {m: (base[m][seed] - drop[m][seed])[::-1] for m in METRICS}))
        truth[split] = {m: (base[m].mean(0), (base[m] - drop[m]).mean(0)) for m in METRICS}
        other = [f"u{i:02d}" for i in range(20, 40)]  # u20..u29 shared
        hist = {m: rng.uniform(0, 1, size=20) for m in METRICS}
        files.append(write_metrics(root, "d-hist", "knn", "a", 0, split, other, hist))
        files.append(write_metrics(root, "d-hist", "knn", "a", 1, split, other, hist))
        truth[f"{split}-hist"] = hist
    return files, truth


PAIRS = [
    ErratumPair("bug", RunRef("d", "knn", "a"), RunRef("d", "knn", "a-bug"), ("backends.a-bug.erratum_x: true",)),
    ErratumPair("history", RunRef("d", "knn", "a"), RunRef("d-hist", "knn", "a"), ("datasets.d-hist.split.history: train_window",)),
]


def test_run_of_reads_the_run_from_the_path():
    path = Path("results/onion-cold/runs/shallow/musicnn/seed3/metrics_val.parquet")
    assert run_of(path) == RunRef("onion-cold", "shallow", "musicnn")
    with pytest.raises(ValueError):
        run_of(Path("results/x/notruns/shallow/musicnn/seed3/metrics_val.parquet"))


def test_differences_and_tests_against_scipy(tmp_path: Path):
    files, truth = planted(tmp_path)
    table = compare_errata(PAIRS, load_runs(files), SETTINGS)
    assert table.height == 2 * 2 * len(METRICS) * 2  # pairs x splits x metrics x tests
    for split in ("test", "val"):
        for metric in METRICS:
            fixed, erratum = truth[split][metric]  # seed-averaged per user, users u00..u29
            rows = table.filter((pl.col("erratum") == "bug") & (pl.col("split") == split) & (pl.col("metric") == metric))
            t = rows.filter(pl.col("test") == "paired_t").row(0, named=True)
            assert t["n_users"] == t["n_users_fixed"] == t["n_users_erratum"] == 30
            assert t["mean_diff"] == pytest.approx((fixed - erratum).mean())
            assert t["mean_fixed"] == pytest.approx(fixed.mean()) and t["mean_erratum"] == pytest.approx(erratum.mean())
            assert t["p_value"] == pytest.approx(sps.ttest_rel(fixed, erratum).pvalue)
            half = sps.t.ppf(0.975, 29) * (fixed - erratum).std(ddof=1) / np.sqrt(30)
            assert t["ci_low"] == pytest.approx((fixed - erratum).mean() - half)
            flip = rows.filter(pl.col("test") == "sign_flip").row(0, named=True)
            assert t["mean_diff"] > 0 and flip["p_value"] < 0.01  # every user's difference is positive

            # the cross-split pair: only the 10 users both splits evaluate (u20..u29)
            h = table.filter((pl.col("erratum") == "history") & (pl.col("split") == split)
                             & (pl.col("metric") == metric) & (pl.col("test") == "paired_t")).row(0, named=True)
            assert (h["n_users"], h["n_users_fixed"], h["n_users_erratum"]) == (10, 30, 20)
            hist = truth[f"{split}-hist"][metric][:10]  # u20..u29 come first in d-hist
            assert h["mean_diff"] == pytest.approx((fixed[20:] - hist).mean())
            assert h["p_value"] == pytest.approx(sps.ttest_rel(fixed[20:], hist).pvalue)


def test_holm_runs_over_the_pairs_of_one_metric(tmp_path: Path):
    files, _ = planted(tmp_path)
    table = compare_errata(PAIRS, load_runs(files), SETTINGS)
    for (split, metric, test), group in table.group_by("split", "metric", "test"):
        p = sorted(group["p_value"].to_list())
        adjusted = sorted(group["p_adjusted"].to_list())
        assert len(p) == 2  # one family = the two pairs
        assert adjusted[0] == pytest.approx(min(1.0, 2 * p[0]))
        assert adjusted[1] == pytest.approx(min(1.0, max(2 * p[0], p[1])))


def test_stale_run_on_the_same_split_is_an_error(tmp_path: Path):
    files, _ = planted(tmp_path)
    stale = write_metrics(tmp_path, "d", "knn", "a-bug", 0, "test", [f"u{i:02d}" for i in range(29)],
                          {m: np.zeros(29) for m in METRICS})
    files = [f for f in files if f != stale] + [stale]
    runs = load_runs([f for f in files if "a-bug/seed1" not in str(f)])
    with pytest.raises(ValueError, match="evaluated different users"):
        compare_errata(PAIRS[:1], runs, SETTINGS)
    with pytest.raises(ValueError, match="no metrics of run"):
        compare_errata([ErratumPair("x", RunRef("d", "knn", "a"), RunRef("d", "knn", "zzz"))], runs, SETTINGS)


def test_build_writes_csv_and_markdown(tmp_path: Path):
    files, _ = planted(tmp_path)
    pairs = [
        {"name": p.name, "fixed": vars(p.fixed), "erratum": vars(p.erratum), "settings": list(p.settings)} for p in PAIRS
    ]
    csv, md = tmp_path / "errata.csv", tmp_path / "errata.md"
    table = build_errata(files, pairs, SETTINGS, "d", csv, md)
    assert pl.read_csv(csv).height == table.height
    text = md.read_text()
    assert "## Test split" in text and "## Validation split" in text
    assert "`backends.a-bug.erratum_x: true`" in text and "10 (of 30 / 20)" in text
    bug = next(line for line in text.splitlines() if line.startswith("| **bug**"))
    assert bug.count("▲") == len(METRICS)  # the fix is better on every metric, significantly

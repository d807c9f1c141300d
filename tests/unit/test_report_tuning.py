"""The report's Tuning section against hand-computed values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from audiorec.evaluation.metric_names import METRICS
from audiorec.report.aggregate import ReportSettings
from audiorec.report.tuning import (
    best_so_far,
    build_tuning_report,
    studies_table,
    study_of,
)

USERS = ["a", "b", "c", "d"]


def write_best(root: Path, model: str, backend: str, value: float, default: float | None, settings: dict) -> Path:
    path = root / "results" / "d" / "tuning" / model / backend / "best.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    best = {"settings": settings, "value": value, "trial": 2, "metric": "ndcg", "k": 10, "budget": 3,
            "n_finished": 3, "n_complete": 2, "n_pruned": 1, "n_failed": 0, "default_value": default,
            "default_settings": None if default is None else {"lr": 0.001}}  # fmt: skip
    path.write_text(json.dumps(best))
    trials = pl.DataFrame(
        {"trial": [0, 1, 2, 3, 4], "state": ["COMPLETE", "PRUNED", "COMPLETE", "FAIL", "COMPLETE"], "value": [0.1, None, 0.3, None, 0.2]}
    )
    trials.write_csv(path.with_name("trials.csv"))
    return path


def write_metrics(root: Path, model: str, backend: str, split: str, ndcg: list[float]) -> Path:
    path = root / "results" / "d" / "runs" / model / backend / "seed0" / f"metrics_{split}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"user_id": USERS, **{m: ndcg for m in METRICS}}).write_parquet(path)
    return path


def test_study_of_and_best_so_far():
    assert study_of("results/d/tuning/shallow_tuned/mfcc/best.json") == ("d", "shallow_tuned", "mfcc")
    with pytest.raises(ValueError, match="not under results/"):
        study_of("results/d/runs/shallow/mfcc/best.json")
    trials = pl.DataFrame({"trial": [3, 0, 1, 2], "state": ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE"], "value": [0.2, 0.1, None, 0.3]})
    assert best_so_far(trials) == [0.1, 0.1, 0.3, 0.3]  # in trial order; a pruned one changes nothing
    failed = pl.DataFrame({"trial": [0, 1, 2], "state": ["COMPLETE", "FAIL", "COMPLETE"], "value": [0.2, None, 0.1]})
    assert best_so_far(failed) == [0.2, 0.2]  # failed trials are not counted


def test_studies_table_reads_each_best_json(tmp_path):
    files = [write_best(tmp_path, "s", "mfcc", 0.30, 0.25, {"lr": 0.01}), write_best(tmp_path, "s", "random", 0.2, None, {"lr": 0.002})]
    table = studies_table(files)
    assert table["backend"].to_list() == ["mfcc", "random"]
    assert table["val_gain"].to_list()[0] == pytest.approx(0.05) and table["val_gain"][1] is None
    assert table["n_finished"].to_list() == [3, 3] and table["n_complete"].to_list() == [2, 2] and json.loads(table["settings"][0]) == {"lr": 0.01}


def test_report_pairs_tuned_with_its_untuned_twin(tmp_path):
    best = [write_best(tmp_path, "s_tuned", b, 0.4, 0.3, {"lr": 0.01}) for b in ("mfcc", "random")]
    tuned = [0.5, 0.2, 0.9, 0.4]
    default = [0.3, 0.2, 0.6, 0.5]
    files = []
    for split in ("val", "test"):
        files += [write_metrics(tmp_path, "s_tuned", b, split, tuned) for b in ("mfcc", "random")]
        files.append(write_metrics(tmp_path, "s", "mfcc", split, default))  # no untuned random run
    out = tmp_path / "out"
    settings = ReportSettings(k=10, test="paired_t")
    table = build_tuning_report(
        best, [p.with_name("trials.csv") for p in best], files, {"s_tuned": "s"}, settings, "d",
        out / "tuning.csv", out / "tuning.md", out / "curves.png",
    )  # fmt: skip
    row = table.filter(pl.col("backend") == "mfcc").row(0, named=True)
    diffs = np.array(tuned) - np.array(default)
    assert row["test_diff"] == pytest.approx(diffs.mean()) == pytest.approx(0.1)
    assert row["test_tuned"] == pytest.approx(np.mean(tuned)) and row["test_default"] == pytest.approx(np.mean(default))
    assert row["p_value"] == pytest.approx(stats.ttest_rel(tuned, default).pvalue)
    assert row["default_run"] == "d/s/mfcc"
    assert table.filter(pl.col("backend") == "random")["test_diff"][0] is None  # no twin run: no test
    md = (out / "tuning.md").read_text()
    assert "| s_tuned | mfcc | 3 / 3 | 1 | 0 | 0.3000 | 0.4000 | lr=0.01 |" in md
    assert "| s_tuned | mfcc | 0.5000 (0.4000) |" in md  # tuned (default) HR; not significant: no mark
    assert "| s_tuned | random | 0.5000 | " in md
    assert (out / "curves.png").stat().st_size > 0

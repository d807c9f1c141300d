"""Tuning through Snakemake on the tiny synthetic dataset (budget 3): adding `tuning:` re-runs no
existing job, every backend's study ends with the budget of complete trials, the tuning jobs
never read the test part, the tuned runs train with their study's best settings, and the
report pairs them with their untuned twin."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import run_workflow, tiny_config
from tests.workflow.workflow_runs import CORES, parse_plan, plan_keys

SHALLOW = {"type": "shallow", "epochs": 2, "batch_size": 256, "n_negatives": 3, "patience": 2}
SPACE = {"lr": [1e-3, 1e-1, "log"], "n_negatives": [2, 6]}
BACKENDS = ("oracle", "random")


def config(tuned: bool) -> dict:
    models = {"shallow": dict(SHALLOW)} | ({"shallow_tuned": dict(SHALLOW)} if tuned else {})
    cfg = tiny_config(backends={"oracle": {}}, models=models)
    if tuned:
        cfg["tuning"] = {"budget": 3, "models": {"shallow_tuned": SPACE}}
    return cfg


def planned_inputs(output: str, rule: str) -> list[str]:
    """The input lines of every `rule` job a dry run lists."""
    blocks = re.split(r"\n\s*\n", output)
    return [re.search(r"input: (.*)", b)[1] for b in blocks if re.search(rf"^\s*rule {rule}:", b, re.MULTILINE)]


def dry_run(workdir: Path, cfg: dict) -> str:
    proc = run_workflow(workdir, cfg, "-n", "--cores", str(CORES))
    return proc.stdout + proc.stderr


def jobs_with_inputs(output: str) -> dict[str, str]:
    """Planned job key -> its input line."""
    found = {}
    for block in re.split(r"\n\s*\n", output):
        jobs = parse_plan(block + "\n")
        line = re.search(r"^\s+input: (.*)$", block, re.MULTILINE)
        if jobs:
            found[jobs[0].key()] = line[1] if line else ""
    return found


def test_without_tuning_nothing_changes_and_tuning_jobs_never_read_test(tmp_path: Path) -> None:
    plain = jobs_with_inputs(dry_run(tmp_path / "plain", config(False)))
    tuned = jobs_with_inputs(dry_run(tmp_path / "tuned", config(True)))
    # every job of the untuned experiment is planned identically (same inputs) with tuning on
    assert sum(map(bool, plain.values())) > 10  # jobs with inputs were parsed
    changed = {k: (v, tuned.get(k)) for k, v in plain.items() if not k.startswith("report[") and tuned.get(k) != v}
    assert not changed
    studies = {k: v for k, v in tuned.items() if k.startswith("tune")}
    assert set(studies) == {f"tune[dataset=tiny,model=shallow_tuned,backend={b}]" for b in BACKENDS}
    for inputs in studies.values():
        assert "train.parquet" in inputs and "val.parquet" in inputs and "test.parquet" not in inputs
    for b in BACKENDS:
        assert f"results/tiny/tuning/shallow_tuned/{b}/best.json" in tuned[f"train[dataset=tiny,model=shallow_tuned,backend={b},seed=0]"]
        assert "tuning" not in tuned[f"train[dataset=tiny,model=shallow,backend={b},seed=0]"]


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"shallow_tuned": {"lrr": [1e-3, 1e-1]}}, "tuning.models.shallow_tuned.lrr: not a setting of this model type"),
        ({"shallow_tuned": {"tower": [0, 1]}}, "tuning.models.shallow_tuned.tower: `tower` is not a numeric setting"),
        ({"shallow_tuned": {"margin": [-1, 1]}}, "tuning.models.shallow_tuned.margin: the range [-1, 1] leaves the schema's bounds"),
        ({"nope": {"lr": [1e-3, 1e-1]}}, "tuning.models lists 'nope', which is not a configured model instance"),
    ],
)
def test_bad_search_spaces_are_config_errors(tmp_path: Path, space: dict, message: str) -> None:
    cfg = config(True)
    cfg["tuning"]["models"] = space
    proc = run_workflow(tmp_path, cfg, "-n", "--cores", "1", check=False)
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr


@pytest.mark.slow  # ~110 s on a loaded 2-core machine: data, 4 trainings, 2 studies of 3 trials, reports
def test_tuning_end_to_end(tmp_path: Path) -> None:
    # the untuned runs first: adding tuning must not re-run them
    run_workflow(tmp_path, config(False), "--cores", "2", *(f"results/tiny/runs/shallow/{b}/seed0/metrics_test.parquet" for b in BACKENDS))
    proc = run_workflow(tmp_path, config(True), "-n", "--cores", "2")
    out = proc.stdout + proc.stderr
    keys = plan_keys(parse_plan(out))
    assert not [k for k in keys if k.startswith(("train[", "train_baseline[")) and "model=shallow," in k]
    assert {k for k in keys if k.startswith("tune")} == {f"tune[dataset=tiny,model=shallow_tuned,backend={b}]" for b in BACKENDS}
    tune_inputs = planned_inputs(out, "tune")
    assert len(tune_inputs) == 2 and not [i for i in tune_inputs if "test.parquet" in i]  # never the test part
    assert all("tuning/shallow_tuned" in i for i in planned_inputs(out, "train") if "shallow_tuned" in i)

    run_workflow(tmp_path, config(True), "--cores", "2", "results/tiny/report/tuning.md")
    results = tmp_path / "results" / "tiny"
    bests = {}
    for backend in BACKENDS:
        study = results / "tuning" / "shallow_tuned" / backend
        best = bests[backend] = json.loads((study / "best.json").read_text())
        trials = pl.read_csv(study / "trials.csv")
        # the same budget for every backend, counted in finished (complete or pruned) trials
        assert best["budget"] == best["n_finished"] == trials.filter(pl.col("state").is_in(["COMPLETE", "PRUNED"])).height == 3
        assert trials["default"][0] and best["default_settings"] == {"lr": 0.001, "n_negatives": 3}
        assert (study / "journal.log").exists()
        run = json.loads((results / "runs" / "shallow_tuned" / backend / "seed0" / "run.json").read_text())
        assert run["tuned_settings"] == best["settings"]
        untuned = json.loads((results / "runs" / "shallow" / backend / "seed0" / "run.json").read_text())
        assert "tuned_settings" not in untuned
    table = pl.read_csv(results / "report" / "tuning.csv")
    assert sorted(table["backend"]) == sorted(BACKENDS) and set(table["n_finished"]) == {3}
    assert set(table["default_run"]) == {f"tiny/shallow/{b}" for b in BACKENDS}
    for row in table.iter_rows(named=True):
        tuned = pl.read_parquet(results / "runs" / "shallow_tuned" / row["backend"] / "seed0" / "metrics_test.parquet")
        default = pl.read_parquet(results / "runs" / "shallow" / row["backend"] / "seed0" / "metrics_test.parquet")
        assert abs(row["test_diff"] - (tuned["ndcg"].mean() - default["ndcg"].mean())) < 1e-9
        assert abs(row["val_tuned"] - bests[row["backend"]]["value"]) < 1e-12
    md = (results / "report" / "tuning.md").read_text()
    assert "| shallow_tuned | oracle | 3 / 3 |" in md and "Table 3 with tuned runs" in md
    assert (results / "report" / "figures" / "tuning_curves.png").stat().st_size > 0

    # a tuning job with an unreadable test part and no journal: it runs its trials again and
    # finds the same best settings (it never opened the test part; the study is seeded)
    test_part = results / "split" / "test.parquet"
    stat = test_part.stat()
    test_part.write_bytes(b"not a parquet file")
    os.utime(test_part, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    study = results / "tuning" / "shallow_tuned" / "oracle"
    (study / "journal.log").unlink()
    run_workflow(tmp_path, config(True), "--cores", "2", "--force", str(study.relative_to(tmp_path) / "best.json"))
    again = json.loads((study / "best.json").read_text())
    assert again == bests["oracle"]


def test_a_cpu_model_type_is_tuned_by_tune_baseline(tmp_path: Path) -> None:
    cfg = tiny_config(backends={"oracle": {}}, models={"ials": {"factors": 8}})
    cfg["tuning"] = {"budget": 2, "models": {"ials": {"regularization": [1e-3, 1.0, "log"], "factors": [4, 16]}}}
    jobs = jobs_with_inputs(dry_run(tmp_path, cfg))
    assert "tune_baseline[dataset=tiny,model=ials,backend=none]" in jobs
    assert not [k for k in jobs if k.startswith("tune[")]
    assert "results/tiny/tuning/ials/none/best.json" in jobs["train_baseline[dataset=tiny,model=ials,backend=none,seed=0]"]

"""Re-running after a config edit runs exactly the jobs the edit concerns (ARCHITECTURE §4):
each test edits the shared tiny experiment's config and checks the dry-run plan against the
session's finished run, job by job (rule and wildcards), never by counts alone."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import snakemake_cmd
from tests.workflow.workflow_runs import (
    CORES,
    extraction_jobs,
    plan,
    plan_keys,
    run_jobs,
)

D = "tiny"
REPORT = {f"report[dataset={D}]"}
ALL_RUNS = [
    ("pop", "none", "train_baseline"),
    ("knn", "oracle", "train_baseline"),
    ("knn", "mfcc", "train_baseline"),
    ("knn", "mert", "train_baseline"),
    ("shallow", "oracle", "train"),
]


def planned(finished_run: Path, config: dict) -> set[str]:
    return plan_keys(plan(finished_run, config))


def test_unchanged_config_plans_nothing_and_the_summary_says_so(finished_run: Path, experiment) -> None:
    assert planned(finished_run, experiment()) == set()
    proc = subprocess.run(
        snakemake_cmd(finished_run, "--summary", "--cores", str(CORES)), cwd=finished_run, capture_output=True, text=True, check=True
    )
    rows = [line.split("\t") for line in proc.stdout.splitlines() if line.startswith(("results/", "resources/"))]
    assert len(rows) > 50, proc.stdout[-2000:]
    stale = [(row[0], row[-2], row[-1]) for row in rows if (row[-2], row[-1]) != ("ok", "no update")]
    assert not stale, stale


def test_reordered_keys_and_spelled_out_defaults_plan_nothing(finished_run: Path, experiment) -> None:
    config = experiment()
    config["models"]["shallow"] = dict(reversed(list(config["models"]["shallow"].items())))
    config["models"]["shallow"]["type"] = "shallow"  # the default type, written out
    config["models"]["shallow"]["margin"] = 0.2  # the schema default
    config["backends"] = {name: {"type": name, **dict(reversed(list(spec.items())))} for name, spec in config["backends"].items()}
    config["backends"]["mfcc"]["n_mfcc"] = 13  # the schema default
    config["datasets"][D]["synthetic"] = dict(reversed(list(config["datasets"][D]["synthetic"].items())))
    assert planned(finished_run, config) == set()


def test_adding_a_backend_plans_only_its_jobs(finished_run: Path, experiment) -> None:
    config = experiment()
    config["backends"]["musicnn"] = {}  # a network: weights fetched, extracted on a GPU node
    config["models"]["shallow"]["backends"].append("musicnn")
    expected = (
        {"fetch_weights[backend=musicnn]"}
        | extraction_jobs(D, "musicnn", rule="embed_shard_gpu")
        | run_jobs(D, "knn", "musicnn", rule="train_baseline")  # knn takes every backend
        | run_jobs(D, "shallow", "musicnn")  # listed: only the new run, not shallow/oracle again
        | REPORT
    )
    assert planned(finished_run, config) == expected


def test_changing_a_model_reruns_only_its_trainings(finished_run: Path, experiment) -> None:
    config = experiment()
    config["models"]["shallow"]["margin"] = 0.3
    assert planned(finished_run, config) == run_jobs(D, "shallow", "oracle") | REPORT


def test_changing_a_backend_reruns_only_its_jobs(finished_run: Path, experiment) -> None:
    config = experiment()
    config["backends"]["mfcc"]["n_mfcc"] = 20
    expected = extraction_jobs(D, "mfcc") | run_jobs(D, "knn", "mfcc", rule="train_baseline") | REPORT
    assert planned(finished_run, config) == expected


def test_settings_that_do_not_change_vectors_rerun_nothing(finished_run: Path, experiment) -> None:
    config = experiment()
    config["backends"]["mfcc"].update(num_workers=0, max_fail_share=0.5)
    assert planned(finished_run, config) == set()


def test_adding_a_seed_plans_only_the_new_seed(finished_run: Path, experiment) -> None:
    config = experiment(seeds=[0, 1])
    expected = set().union(*(run_jobs(D, m, b, seeds=(1,), rule=r) for m, b, r in ALL_RUNS)) | REPORT
    assert planned(finished_run, config) == expected


def test_changing_the_split_keeps_the_embeddings(finished_run: Path, experiment) -> None:
    config = experiment(split={"val_share": 0.4})
    expected = {f"split[dataset={D}]"} | set().union(*(run_jobs(D, m, b, rule=r) for m, b, r in ALL_RUNS)) | REPORT
    assert planned(finished_run, config) == expected


def test_changing_report_settings_reruns_only_the_report(finished_run: Path, experiment) -> None:
    config = experiment(report={"alpha": 0.01})
    assert planned(finished_run, config) == REPORT


def test_removing_a_model_plans_nothing(finished_run: Path, experiment) -> None:
    config = experiment()
    del config["models"]["pop"]
    assert planned(finished_run, config) == REPORT  # the report drops the model; nothing retrains


def test_every_job_of_the_finished_run_is_accounted_for(finished_run: Path, experiment) -> None:
    """The expected plans above name jobs by these keys: a full forced plan has exactly them."""
    keys = plan_keys(plan(finished_run, experiment(), "--forceall"))
    expected = (
        {f"synthesize[dataset={D}]", f"tracks[dataset={D}]", f"split[dataset={D}]", "fetch_weights[backend=mert]"}
        | extraction_jobs(D, "oracle")
        | extraction_jobs(D, "mfcc")
        | extraction_jobs(D, "mert", rule="embed_shard_gpu")
        | set().union(*(run_jobs(D, m, b, rule=r) for m, b, r in ALL_RUNS))
        | REPORT
    )
    assert keys == expected


def test_a_moved_workflow_folder_reruns_nothing(finished_run: Path, experiment, tmp_path: Path) -> None:
    """The workflow and its results copied elsewhere (rsync to a cluster, a renamed checkout) plan
    nothing: no job's inputs or params hold an absolute path of the original checkout."""
    import shutil
    import sys

    import yaml

    from tests.conftest import ROOT
    from tests.workflow.workflow_runs import copy_workdir

    skip = shutil.ignore_patterns(
        ".git", ".venv", "venv", "results", "logs", ".snakemake", "__pycache__", "*.egg-info", ".pytest_cache", "tests"
    )
    repo = shutil.copytree(ROOT, tmp_path / "moved" / "audiorec", ignore=skip)
    work = copy_workdir(finished_run, tmp_path / "moved" / "work")
    (work / "config.yaml").write_text(yaml.safe_dump(experiment(), sort_keys=False))
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "--directory", str(work), "-n", "--cores", str(CORES)],
        cwd=work, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Nothing to be done" in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]

"""The shared tiny experiment submitted to a real (single-node, local) SLURM through
profiles/slurm and snakemake-executor-plugin-slurm: it finishes, its outputs equal the local
run's, and each job asked SLURM for what the profile says (a GPU exactly for the GPU
rules, its threads as CPUs, the profile's memory and time, evaluations grouped).

.ci/start-slurm starts such a cluster (Debian's slurmctld/slurmd/munge, a fake GPU gres);
where none answers, these tests skip with the reason. The cluster has no accounting, hence
`--slurm-status-command squeue --slurm-no-account` (tests/workflow/conftest.py)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.workflow.workflow_runs import tree_differences

pytestmark = pytest.mark.cluster

GPU_RULES = {"train", "embed_shard_gpu"}
#: the jobs of the shared experiment (workflow_runs.workflow_config): rule -> count
EXPECTED_SUBMISSIONS = {
    "synthesize": 1,
    "tracks": 1,
    "split": 1,
    "embed_shard": 2,  # oracle, mfcc
    "embed_shard_gpu": 1,  # mert
    "embed": 3,
    "train_baseline": 4,
    "train": 1,
    "report": 1,
    "group:metrics": 1,
}


def submissions(output: str) -> list[tuple[str, str]]:
    """(rule, sbatch options) of every job the plugin submitted; group jobs as group:<name>."""
    out = []
    for line in output.splitlines():
        if not line.startswith("sbatch call:"):
            continue
        options = line.split(" --wrap=")[0]
        rule = re.search(r"slurm_logs/rule_(\w+)/", options)
        group = re.search(r"slurm_logs/group_([A-Za-z0-9]+)", options)
        assert rule or group, line[:300]
        out.append((rule[1] if rule else f"group:{group[1]}", options))
    return out


def option(options: str, flag: str) -> str | None:
    match = re.search(rf"(?:^|\s){re.escape(flag)}[= ](\S+)", options)
    return match[1] if match else None


def test_outputs_equal_a_local_run(slurm_run, finished_run: Path) -> None:
    assert tree_differences(finished_run, slurm_run.workdir) == []


def test_every_job_was_submitted_once_and_evaluations_in_one_group(slurm_run) -> None:
    counts = Counter(rule for rule, _ in submissions(slurm_run.output))
    assert dict(counts) == EXPECTED_SUBMISSIONS
    # the group job really ran all 10 evaluations (5 runs x val/test)
    logs = list((slurm_run.workdir / ".snakemake/slurm_logs").glob("group_metrics*/**/*.log"))
    assert len(logs) == 1, logs
    assert len(set(re.findall(r"Finished jobid: (\d+) \(Rule: evaluate\)", logs[0].read_text()))) == 10


def test_weights_were_fetched_on_the_submitting_host(slurm_run) -> None:
    assert "localrule fetch_weights:" in slurm_run.output
    assert (slurm_run.workdir / "resources/weights/manifests/mert.json").exists()


def test_a_gpu_is_requested_exactly_for_the_gpu_rules(slurm_run) -> None:
    for rule, options in submissions(slurm_run.output):
        gpu = option(options, "--gres") or option(options, "--gpus")
        if rule in GPU_RULES:
            assert option(options, "--gres") == "gpu:1" and option(options, "--gpus") is None, options
        else:
            assert gpu is None, f"{rule} holds a GPU: {options}"


def _expected(profile: dict, rule: str, key: str, attempt: int = 1):
    value = profile["set-resources"].get(rule, {}).get(key, profile["default-resources"].get(key))
    return eval(str(value), {"attempt": attempt})  # noqa: S307 - the test's own profile


def test_jobs_get_the_profiles_cpus_memory_and_time(slurm_run) -> None:
    profile = yaml.safe_load((slurm_run.workdir / "profile/config.yaml").read_text())
    for rule, options in submissions(slurm_run.output):
        if rule.startswith("group:"):
            continue
        threads = profile["set-threads"].get(rule, 1)
        assert option(options, "--cpus-per-task") == str(threads), (rule, options)
        assert option(options, "--mem") == str(_expected(profile, rule, "mem_mb")), (rule, options)
        assert option(options, "-t") == str(_expected(profile, rule, "runtime")), (rule, options)
    # and inside the job, Snakemake ran the rule with those threads
    log = next((slurm_run.workdir / ".snakemake/slurm_logs/rule_train").glob("**/*.log")).read_text()
    assert re.search(rf"^\s+threads: {profile['set-threads']['train']}$", log, re.M), log[-3000:]

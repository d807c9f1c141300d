"""The shared tiny experiment submitted to a real (single-node, local) SLURM through
profiles/slurm and snakemake-executor-plugin-slurm: it finishes, its outputs equal the local
run's, and each job asked SLURM for what the profile says (a GPU exactly for the GPU
rules, its threads as CPUs, the profile's memory and time, evaluations grouped).

.ci/start-slurm starts such a cluster (Debian's slurmctld/slurmd/munge, a fake GPU gres);
where none answers, these tests skip with the reason. The cluster has no accounting, hence
`--slurm-status-command squeue --slurm-no-account` (tests/workflow/conftest.py)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.workflow.conftest import SLURM_FLAGS
from tests.workflow.workflow_runs import (
    copy_workdir,
    file_difference,
    output_of,
    start_workflow,
    tree_differences,
    wait_for,
)

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
    # the group job really ran all 10 evaluations and 10 beyond-accuracy evaluations (5 runs x val/test)
    logs = list((slurm_run.workdir / ".snakemake/slurm_logs").glob("group_metrics*/**/*.log"))
    assert len(logs) == 1, logs
    text = logs[0].read_text()
    assert len(set(re.findall(r"output: (\S+/metrics_(?:val|test)\.parquet)", text))) == 10
    assert len(set(re.findall(r"output: (\S+/beyond_(?:val|test)\.parquet)", text))) == 10


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
    threads = profile["set-threads"]["train"]
    if threads > 1:
        assert re.search(rf"^\s+threads: {threads}$", log, re.M), log[-3000:]
    else:  # Snakemake prints a job's threads only when there are several
        assert not re.search(r"^\s+threads: \d+$", log, re.M), log[-3000:]


# --- .ci/start-slurm on a fresh machine ---

FRESH_MACHINE = r"""
set -e
hostname fresh-node                      # a name no resolver knows
ip link set lo up
ip addr add 10.200.0.1/32 dev lo         # a non-loopback address, as any real machine has
for d in /etc/slurm /var/spool /var/log /run /etc/munge /var/lib/munge; do mount -t tmpfs tmpfs "$d"; done
chown munge:munge /etc/munge /var/lib/munge
"$START"
printf '#!/bin/sh\necho "gpus=${SLURM_GPUS_ON_NODE:-0} on $(hostname)"\n' > "$WORK/job.sh"
gpu=$(sbatch --parsable --gres=gpu:1 --mem 100 -o "$WORK/gpu.out" "$WORK/job.sh")
cpu=$(sbatch --parsable --mem 100 -o "$WORK/cpu.out" "$WORK/job.sh")
for _ in $(seq 60); do squeue -h -j "$gpu,$cpu" 2>/dev/null | grep -q . || break; sleep 1; done
cat "$WORK/gpu.out" "$WORK/cpu.out"
"$START"                                 # a second call finds it running
"""


def _fresh_machine_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (it starts SLURM daemons in private namespaces)"
    if not all(shutil.which(tool) for tool in ("unshare", "ip", "slurmctld", "slurmd", "munged")):
        return "needs unshare, ip and the SLURM/munge daemons (.ci/start-slurm installs the latter)"
    probe = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--uts", "--net", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create private namespaces here: {probe.stderr.strip()}"
    return None


def test_start_slurm_brings_up_a_fresh_machine(tmp_path: Path) -> None:
    """.ci/start-slurm on a machine that has never run SLURM (private mount, PID, network
    and host-name namespaces: empty /etc/slurm, /etc/munge, /run, /var/spool, a host name
    that does not resolve) starts a node that runs a GPU job and a CPU job, and is
    idempotent. The cluster of the other tests is not touched."""
    reason = _fresh_machine_unavailable()
    if reason:
        pytest.skip(reason)
    script = tmp_path / "fresh.sh"
    script.write_text(FRESH_MACHINE)
    env = {**os.environ, "START": str(ROOT / ".ci" / "start-slurm"), "WORK": str(tmp_path)}
    proc = subprocess.run(
        ["unshare", "--mount", "--pid", "--fork", "--uts", "--net", "--mount-proc", "bash", str(script)],
        capture_output=True, text=True, timeout=240, env=env,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "start-slurm: node fresh-node is up" in out and "gpu:1" in out, out
    assert "gpus=1 on fresh-node" in out and "gpus=0 on fresh-node" in out, out
    assert "start-slurm: already running" in out, out


# --- a SLURM job cancelled mid-training (pre-emption, node failure) ---


@pytest.mark.slow  # a minute of SLURM round trips
def test_cancelled_training_is_retried_and_resumes_from_its_checkpoint(slurm_run, finished_run: Path, tmp_path: Path) -> None:
    run = "results/tiny/runs/shallow/oracle/seed0"
    outputs = [f"{run}/{name}" for name in ("recs_val.parquet", "recs_test.parquet", "history.csv", "model.pt", "run.json")]
    work = copy_workdir(finished_run, tmp_path / "work")
    for rel in outputs:
        (work / rel).unlink()
    proc = start_workflow(work, "--workflow-profile", str(slurm_run.workdir / "profile"), *SLURM_FLAGS, *outputs)
    deadline = time.monotonic() + 600
    while not (work / run / "checkpoint.pt").exists():
        assert proc.poll() is None, output_of(work)[-4000:]
        assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
        time.sleep(0.01)
    job = re.search(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_train/", output_of(work))
    assert job, output_of(work)[-4000:]
    subprocess.run(["scancel", job[1]], check=True)
    out = wait_for(proc, work, timeout=900)

    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/rule_train/", out)
    assert len(submitted) == 2, f"expected the cancelled job and one retry: {submitted}"
    assert "--attempt 2" in out, "the retry did not run as attempt 2 (more memory and time)"
    info = json.loads((work / run / "run.json").read_text())
    assert info["resumed_from_epoch"] >= 1, f"the retry trained from scratch: {info}"
    for rel in outputs:
        why = file_difference(finished_run / rel, work / rel, ignore=frozenset({"resumed_from_epoch"}))
        assert why is None, f"{rel}: {why}"

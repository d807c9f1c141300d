"""profiles/slurm against the real rules, from a dry run of the default experiment plus a
network backend pinned to the CPU (no cluster needed; test_slurm.py submits for real):
GPUs go exactly to the GPU rules, every job's CPUs are its threads, every rule has its own
memory and time that grow on a retry, and evaluations are grouped."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import ROOT, run_workflow
from tests.workflow.workflow_runs import PlannedJob, parse_plan

PROFILE = ROOT / "profiles" / "slurm"
GPU_RULES = {"train", "embed_shard_gpu", "tune"}
#: run on the submitting host (a dry run cannot show it; test_slurm.py checks it on a cluster)
LOCAL_RULES = {"fetch_weights"}


@pytest.fixture(scope="module")
def settings() -> dict:
    return yaml.safe_load((PROFILE / "config.yaml").read_text())


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> list[PlannedJob]:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["backends"]["mert_cpu"] = {"type": "mert", "device": "cpu"}
    # tuning on, so that the tuning rules are planned too (a study per backend of shallow)
    config["tuning"] = {"budget": 2, "models": {"shallow": {"lr": [1e-4, 1e-2, "log"]}}}
    work = tmp_path_factory.mktemp("profile_plan")
    proc = run_workflow(work, config, "-n", "--workflow-profile", str(PROFILE))
    planned = parse_plan(proc.stdout + proc.stderr)
    assert planned, proc.stdout[-3000:]
    return planned


def _by_rule(jobs: list[PlannedJob]) -> dict[str, list[PlannedJob]]:
    out: dict[str, list[PlannedJob]] = {}
    for job in jobs:
        out.setdefault(job.rule, []).append(job)
    return out


def test_gpus_go_exactly_to_the_gpu_rules(jobs: list[PlannedJob]) -> None:
    for job in jobs:
        assert "gpu" not in job.resources, f"{job.key()}: `gpu` and `gres` together request two GPUs"
        assert (job.resources.get("gres") == "gpu:1") == (job.rule in GPU_RULES), (job.key(), job.resources)
    backends = {job.wildcards["backend"]: job.rule for job in jobs if job.rule.startswith("embed_shard")}
    # networks on a GPU node; MFCC, the oracle and a network pinned to the CPU on a CPU node
    assert backends == {"musicnn": "embed_shard_gpu", "oracle": "embed_shard", "mfcc": "embed_shard", "mert_cpu": "embed_shard"}
    assert {job.wildcards["model"] for job in jobs if job.rule == "train"} == {"shallow", "bert4rec"}
    assert {job.wildcards["backend"] for job in jobs if job.rule == "tune"} == {"oracle", "mfcc", "musicnn", "mert_cpu", "random"}


def test_every_job_asks_for_its_threads_as_cpus(jobs: list[PlannedJob], settings: dict) -> None:
    for job in jobs:
        assert int(job.resources["cpus_per_task"]) == job.threads, job.key()
        assert job.threads <= settings["cores"]
        if job.rule in settings["set-threads"]:
            assert job.threads == min(settings["set-threads"][job.rule], settings["cores"]), job.key()
        else:
            assert job.threads == 1, f"{job.key()} takes {job.threads} threads without a set-threads entry"


def test_every_submitted_rule_has_its_own_memory_and_time(jobs: list[PlannedJob], settings: dict) -> None:
    submitted = {job.rule for job in jobs} - LOCAL_RULES
    assert submitted - set(settings["set-resources"]) == set(), "rules left at the default resources"
    for rule, resources in settings["set-resources"].items():
        for key in ("mem_mb", "runtime"):
            first, retry = (eval(str(resources[key]), {"attempt": a}) for a in (1, 2))  # noqa: S307
            assert retry > first, f"{rule}.{key} does not grow on a retry"
    assert settings["retries"] >= 1


def test_planned_resources_are_the_profiles(jobs: list[PlannedJob], settings: dict) -> None:
    for rule, rule_jobs in _by_rule(jobs).items():
        wanted = settings["set-resources"].get(rule)
        if wanted is None:
            continue
        for job in rule_jobs:
            assert int(job.resources["mem_mb"]) == eval(str(wanted["mem_mb"]), {"attempt": 1}), job.key()  # noqa: S307
            assert int(job.resources["runtime"]) == eval(str(wanted["runtime"]), {"attempt": 1}), job.key()  # noqa: S307


def test_evaluations_are_grouped(jobs: list[PlannedJob], settings: dict) -> None:
    assert settings["groups"]["evaluate"] in settings["group-components"]
    assert any(job.rule == "evaluate" for job in jobs)

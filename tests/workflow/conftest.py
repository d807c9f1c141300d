"""Session fixtures of the whole-workflow tests: one complete local run of the shared tiny
experiment (tests/workflow/workflow_runs.py), which the incremental tests plan against and
the kill/resume tests copy, and the same experiment run through profiles/slurm on a local
SLURM cluster, which tests/workflow/test_slurm.py compares with it.

The SLURM run mostly waits on the queue, so it is started in the background before the
local run whenever cluster tests are selected, and the two overlap."""

from __future__ import annotations

import functools
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import run_workflow, snakemake_cmd
from tests.workflow.workflow_runs import (
    CORES,
    fit_profile,
    node_limits,
    repo_profile,
    save_tiny_mert,
    slurm_unavailable,
    workflow_config,
)

#: flags a cluster without accounting needs (docs/cluster.md), and the test's own: status
#: checks from 2 s on, so that a 20-job run takes minutes; job logs kept for the checks
SLURM_FLAGS = (
    "--slurm-status-command",
    "squeue",
    "--slurm-no-account",
    "--slurm-init-seconds-before-status-checks",
    "2",
    "--slurm-keep-successful-logs",
    "--verbose",  # prints each sbatch call
)


class SlurmRun:
    """The shared experiment submitted through profiles/slurm, scaled to the test node."""

    def __init__(self, workdir: Path, config: dict[str, Any]) -> None:
        self.workdir = workdir
        self.config = config
        self.proc: subprocess.Popen[str] | None = None
        self.returncode: int | None = None

    def start(self) -> None:
        if self.proc is not None:
            return
        cpus, mem_mb = node_limits()
        # the same threads as the local run (so the same numbers); a quarter of the node's
        # memory per job, so that memory does not serialise the jobs
        profile = fit_profile(repo_profile("slurm"), self.workdir / "profile", min(cpus, CORES), mem_mb // 4)
        (self.workdir / "config.yaml").write_text(yaml.safe_dump(self.config, sort_keys=False))
        out = (self.workdir / "snakemake.out").open("w")
        self.proc = subprocess.Popen(
            snakemake_cmd(self.workdir, "--workflow-profile", str(profile), *SLURM_FLAGS),
            cwd=self.workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait(self, timeout: float = 1200) -> None:
        self.start()
        assert self.proc is not None
        self.returncode = self.proc.wait(timeout=timeout)

    @property
    def output(self) -> str:
        return (self.workdir / "snakemake.out").read_text()

    def stop(self) -> None:
        """Interrupt a run nobody waited for: Snakemake cancels its SLURM jobs."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def experiment(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., dict[str, Any]]:
    """workflow_runs.workflow_config with this session's tiny MERT weights: call it for a
    fresh config of the shared experiment (keyword arguments as tiny_config's)."""
    weights = save_tiny_mert(tmp_path_factory.mktemp("weights") / "mert")
    return functools.partial(workflow_config, weights)


@pytest.fixture(scope="session")
def slurm_background(tmp_path_factory: pytest.TempPathFactory, experiment: Callable[..., dict[str, Any]]):
    """The SLURM run, not yet started (None where no cluster answers); stopped at the end."""
    run = None if slurm_unavailable() else SlurmRun(tmp_path_factory.mktemp("slurm_run"), experiment())
    yield run
    if run is not None:
        run.stop()


@pytest.fixture(scope="session")
def finished_run(
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
    experiment: Callable[..., dict[str, Any]],
    slurm_background: SlurmRun | None,
) -> Path:
    """The shared tiny experiment run to completion locally (about a minute on 2 cores).
    Treat it as read-only: copy it (workflow_runs.copy_workdir) before running jobs in it.
    Dry runs may write its config.yaml."""
    if slurm_background is not None and any(item.get_closest_marker("cluster") for item in request.session.items):
        slurm_background.start()
    workdir = tmp_path_factory.mktemp("finished_run")
    run_workflow(workdir, experiment(), "--cores", str(CORES))
    return workdir


@pytest.fixture(scope="session")
def slurm_run(slurm_background: SlurmRun | None, request: pytest.FixtureRequest) -> SlurmRun:
    """The SLURM run, finished (skips with the reason where no local SLURM answers)."""
    reason = slurm_unavailable()
    if reason or slurm_background is None:
        pytest.skip(reason or "SLURM was not up when the session started")
    request.getfixturevalue("finished_run")  # starts this run first, then runs locally meanwhile
    slurm_background.wait()
    assert slurm_background.returncode == 0, f"the SLURM run failed:\n{slurm_background.output[-12000:]}"
    return slurm_background

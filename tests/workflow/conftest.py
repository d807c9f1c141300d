"""Session fixtures of the whole-workflow tests: one complete local run of the shared tiny
experiment (tests/workflow/workflow_runs.py), which the incremental tests plan against and
the SLURM and kill/resume tests compare with."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_workflow
from tests.workflow.workflow_runs import CORES, workflow_config


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared tiny experiment run to completion locally (about a minute on 2 cores).
    Treat it as read-only: copy it (workflow_runs.copy_workdir) before running jobs in it.
    Dry runs may write its config.yaml."""
    workdir = tmp_path_factory.mktemp("finished_run")
    run_workflow(workdir, workflow_config(), "--cores", str(CORES))
    return workdir

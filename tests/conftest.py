"""Shared fixtures: the repository root, a runner for Snakemake on tiny configs in a temp dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


def snakemake_cmd(workdir: Path, *args: str) -> list[str]:
    """The snakemake command line for the repository's workflow run in `workdir`."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
    ]


def run_workflow(
    workdir: Path,
    config: dict[str, Any] | None,
    *args: str,
    check: bool = True,
    timeout: float = 1800,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Write `config` as workdir/config.yaml (if given) and run snakemake there.

    On failure the output is shown in the assertion, so a failing workflow test says why.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        snakemake_cmd(workdir, *args),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode})\n--- stdout\n{proc.stdout[-8000:]}"
            f"\n--- stderr\n{proc.stderr[-12000:]}"
        )
    return proc

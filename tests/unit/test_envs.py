"""The conda envs (one per job family) stay valid, pinned, and consistent with pyproject.toml.

Conda channels are unreachable here, so `--use-conda` cannot be exercised; what can be
checked is that every env file parses, pins exact versions from conda-forge, and that
each pin satisfies the range pyproject.toml gives the pip install.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))

# conda-forge package name -> PyPI name, where they differ
CONDA_TO_PIP = {
    "pytorch": "torch",
    "pysoundfile": "soundfile",
    "soxr-python": "soxr",
    "matplotlib-base": "matplotlib",
}
PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)\s*(?:=|==)\s*(?P<version>[0-9][^\s=<>!,]*)$")


def _pyproject_requirements() -> dict[str, Requirement]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = [Requirement(r) for r in data["project"]["dependencies"]]
    for extra in data["project"].get("optional-dependencies", {}).values():
        reqs += [Requirement(r) for r in extra]
    return {r.name.lower().replace("_", "-"): r for r in reqs}


def _conda_pins(env: dict) -> dict[str, str]:
    pins = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):  # a `pip:` sub-list
            continue
        m = PIN.match(dep.strip())
        assert m, f"unpinned or malformed conda dependency {dep!r}: pin it as name=X.Y.Z"
        pins[m["name"].lower()] = m["version"]
    return pins


def test_there_is_one_env_per_job_family() -> None:
    names = {p.stem for p in ENV_FILES}
    assert {"core", "extract", "train"} <= names


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_is_pinned_conda_forge_and_agrees_with_pyproject(env_file: Path) -> None:
    env = yaml.safe_load(env_file.read_text())
    assert set(env) >= {"name", "channels", "dependencies"}, f"{env_file.name}: missing keys"
    assert env["channels"][0] == "conda-forge", f"{env_file.name}: conda-forge must come first"
    pins = _conda_pins(env)
    assert "python" in pins, f"{env_file.name}: pin python"
    requirements = _pyproject_requirements()
    checked = 0
    for conda_name, version in pins.items():
        pip_name = CONDA_TO_PIP.get(conda_name, conda_name).replace("_", "-")
        req = requirements.get(pip_name)
        if req is None:
            continue
        checked += 1
        assert req.specifier.contains(Version(version), prereleases=True), (
            f"{env_file.name} pins {conda_name}={version}, outside pyproject's {req}"
        )
    assert checked >= 3, f"{env_file.name}: expected most packages to be pyproject dependencies"


def test_pinned_versions_agree_across_envs() -> None:
    """One version of a package everywhere, so every job family computes with the same code."""
    seen: dict[str, tuple[str, str]] = {}
    for env_file in ENV_FILES:
        for name, version in _conda_pins(yaml.safe_load(env_file.read_text())).items():
            if name in seen:
                assert seen[name][0] == version, (
                    f"{name} pinned {seen[name][0]} in {seen[name][1]} but {version} in {env_file.name}"
                )
            else:
                seen[name] = (version, env_file.name)


def test_every_rule_names_an_existing_env() -> None:
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        for rel in re.findall(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()):
            assert (smk.parent / rel).resolve().is_file(), f"{smk.name}: conda env {rel} does not exist"

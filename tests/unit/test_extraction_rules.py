"""rules/common.smk cannot import audiorec: the facts it repeats are kept in step here (the backend
types' facts it reads from their declarations: tests/unit/test_backend_declarations.py)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from audiorec.extraction import jobs
from audiorec.extraction.shards import NON_CONTENT_KEYS


def smk_constant(repo_root: Path, name: str) -> tuple:
    text = (repo_root / "rules" / "common.smk").read_text()
    match = re.search(rf"^{name} = (\(.*?\))$", text, flags=re.M | re.S)
    assert match, f"{name} not found in rules/common.smk"
    return ast.literal_eval(match.group(1))


def backend_schema(repo_root: Path) -> dict:
    schema = yaml.safe_load((repo_root / "schemas" / "config.schema.yaml").read_text())
    return schema["$defs"]["backend"]


def test_runtime_keys_never_change_a_shard(repo_root: Path) -> None:
    # keys left out of params must also be left out of the resume digest
    assert set(smk_constant(repo_root, "RUNTIME_BACKEND_KEYS")) <= set(NON_CONTENT_KEYS)


def test_engine_defaults_are_the_schema_defaults(repo_root: Path) -> None:
    props = backend_schema(repo_root)["properties"]
    for key, value in jobs.DEFAULTS.items():
        assert props[key]["default"] == value, key

"""rules/common.smk cannot import audiorec: the facts it repeats are kept in step here."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest
import yaml

from audiorec.backends import registry
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


@pytest.mark.parametrize("type_name", sorted(registry.BACKEND_TYPES))
def test_weighted_types_in_common_smk_match_has_weights(repo_root: Path, type_name: str) -> None:
    module, _ = registry.BACKEND_TYPES[type_name].split(":")
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            pytest.skip(f"{module} is not written yet")
        raise
    cls = registry.backend_class(type_name)
    weighted = set(smk_constant(repo_root, "WEIGHTED_BACKEND_TYPES"))
    assert cls.has_weights == (type_name in weighted), (
        f"{cls.__name__}.has_weights is {cls.has_weights}; update WEIGHTED_BACKEND_TYPES in rules/common.smk"
    )


def test_weighted_types_are_registered(repo_root: Path) -> None:
    assert set(smk_constant(repo_root, "WEIGHTED_BACKEND_TYPES")) <= set(registry.BACKEND_TYPES)


def test_runtime_keys_never_change_a_shard(repo_root: Path) -> None:
    # keys left out of params must also be left out of the resume digest
    assert set(smk_constant(repo_root, "RUNTIME_BACKEND_KEYS")) <= set(NON_CONTENT_KEYS)


def test_engine_defaults_are_the_schema_defaults(repo_root: Path) -> None:
    props = backend_schema(repo_root)["properties"]
    for key, value in jobs.DEFAULTS.items():
        assert props[key]["default"] == value, key

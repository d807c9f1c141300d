"""rules/common.smk cannot import audiorec, so it names the backend types whose extraction
goes to the GPU rule (embed_shard_gpu) itself; this keeps that list in step with the classes:
a GPU helps exactly the types that run a pretrained network (weights) on audio."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from audiorec.backends import registry


def gpu_backend_types(repo_root: Path) -> set[str]:
    text = (repo_root / "rules" / "common.smk").read_text()
    match = re.search(r"^GPU_BACKEND_TYPES = (\(.*?\))$", text, flags=re.M | re.S)
    assert match, "GPU_BACKEND_TYPES not found in rules/common.smk"
    return set(ast.literal_eval(match.group(1)))


@pytest.mark.parametrize("type_name", sorted(registry.BACKEND_TYPES))
def test_gpu_types_are_the_networks(repo_root: Path, type_name: str) -> None:
    cls = registry.backend_class(type_name)
    network = bool(cls.has_weights) and bool(cls.needs_audio)
    assert (type_name in gpu_backend_types(repo_root)) == network, (
        f"{cls.__name__}: has_weights={cls.has_weights}, needs_audio={cls.needs_audio}; "
        "update GPU_BACKEND_TYPES in rules/common.smk"
    )


def test_gpu_types_are_registered(repo_root: Path) -> None:
    assert gpu_backend_types(repo_root) <= set(registry.BACKEND_TYPES)

"""rules/common.smk sends a backend's extraction to the GPU rule (embed_shard_gpu) when its
declaration says `network: true`; this keeps that fact in step with the classes: a GPU helps
exactly the types that run a pretrained network (weights) on audio."""

from __future__ import annotations

import pytest

from audiorec.backends import registry
from audiorec.backends.declarations import read_declarations


@pytest.mark.parametrize("type_name", sorted(registry.BACKEND_TYPES))
def test_gpu_types_are_the_networks(type_name: str) -> None:
    cls = registry.backend_class(type_name)
    network = bool(cls.has_weights) and bool(cls.needs_audio)
    assert read_declarations()[type_name].network == network, (
        f"{cls.__name__}: has_weights={cls.has_weights}, needs_audio={cls.needs_audio}; "
        f"set `network:` in src/audiorec/backends/{type_name}.yaml"
    )


def test_common_smk_routes_by_the_declarations(repo_root) -> None:
    text = (repo_root / "rules" / "common.smk").read_text()
    assert "GPU_BACKEND_TYPES = tuple(t for t, d in BACKEND_DECLARATIONS.items() if d.network)" in text

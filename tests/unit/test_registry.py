"""The backend registry, the config schema and the workflow agree on the backend types."""

from __future__ import annotations

from pathlib import Path

import pytest
from audiorec.backends.base import Backend
from audiorec.backends.declarations import load_config_schema
from audiorec.backends.registry import BACKEND_TYPES, UnknownBackendError, backend_class, build_backend

ROOT = Path(__file__).resolve().parents[2]


def _schema() -> dict:
    return load_config_schema(ROOT)


def test_schema_enum_lists_exactly_the_registered_types() -> None:
    enum = _schema()["$defs"]["backend"]["properties"]["type"]["enum"]
    assert sorted(enum) == sorted(BACKEND_TYPES)


@pytest.mark.parametrize("type_name", sorted(BACKEND_TYPES))
def test_every_registered_type_imports_and_names_itself(type_name: str) -> None:
    cls = backend_class(type_name)
    assert issubclass(cls, Backend)
    assert cls.type_name == type_name


def test_unknown_type_lists_the_known_ones() -> None:
    with pytest.raises(UnknownBackendError) as err:
        build_backend({"type": "wav2vec9"})
    message = str(err.value)
    assert "wav2vec9" in message
    for known in BACKEND_TYPES:
        assert known in message

"""Backend types by name. Modules are imported lazily so that, e.g., building the MFCC
backend never imports transformers."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from .base import Backend, BackendError
from .declarations import read_declarations

#: type name -> "module:Class", from the declarations (src/audiorec/backends/{type}.yaml):
#: a backend type is declared once, there, and the schema and the workflow read the same files.
BACKEND_TYPES: dict[str, str] = {name: d.target for name, d in read_declarations().items()}


class UnknownBackendError(BackendError, KeyError):
    """A config names a backend type that does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


def backend_types() -> list[str]:
    return sorted(BACKEND_TYPES)


def backend_class(type_name: str) -> type[Backend]:
    try:
        target = BACKEND_TYPES[type_name]
    except KeyError:
        raise UnknownBackendError(
            f"unknown backend type {type_name!r}; known types: {', '.join(backend_types())}. "
            "Set `type:` of the backend in config.yaml to one of them."
        ) from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)


def build_backend(spec: Mapping[str, Any], name: str | None = None) -> Backend:
    """Instantiate the backend a config spec describes (`type` defaults to the instance name)."""
    type_name = spec.get("type", name)
    if type_name is None:
        raise BackendError("backend spec has no `type` and no instance name to default it to")
    return backend_class(str(type_name))(spec)

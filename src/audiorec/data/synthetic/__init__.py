"""The embedded synthetic stand-in for Music4All-Onion (see docs/synthetic.md).

`generate_dataset(settings, folder, threads)` writes a listening log, audio clips and the
ground truth that produced them; `SyntheticSettings` holds the knobs. The generator's
heavier modules are imported on first use, so that reading the genre vocabulary (as the
`oracle` backend does) costs nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "DatasetPaths": "dataset",
    "Summary": "dataset",
    "generate_dataset": "dataset",
    "GENRES": "genres",
    "GENRE_NAMES": "genres",
    "TASTE_ATTRIBUTES": "genres",
    "SettingsError": "settings",
    "SyntheticSettings": "settings",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

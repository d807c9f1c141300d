"""The tuned settings a final training uses: read from its tuning job's best.json."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def read_best(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The best trial's settings ({setting: value}); a clear error for a file that is not one."""
    try:
        found = json.loads(Path(path).read_text())
        settings = found["settings"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a tuning result with `settings` ({err}); re-run its `tune` job") from None
    if not isinstance(settings, dict) or not settings:
        raise ValueError(f"{path}: `settings` is empty; re-run its `tune` job")
    return settings


def apply_best(spec: dict[str, Any], path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """`spec` with the tuned settings in place of the configured ones (unchanged without a file)."""
    return spec if not path else {**spec, **read_best(path)}

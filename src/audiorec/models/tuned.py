"""Tuned settings for a final training: the best trial of its tuning job (docs/models.md, "Tuning").

Rule `train` of a tuned model gets the tuning job's best.json as its input `tuned` (it reaches
train_run among the run's extra inputs, so scripts/train.py needs no change); its settings
replace the configured ones. Written by audiorec.tuning.study.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TUNED_INPUT = "tuned"  # the train rule's input name of a tuning job's best.json


def read_best(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The best trial's settings ({setting: value}); a clear error for a file that is not one."""
    try:
        settings = json.loads(Path(path).read_text())["settings"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a tuning result with `settings` ({err}); re-run its `tune` job") from None
    if not isinstance(settings, dict) or not settings:
        raise ValueError(f"{path}: `settings` is empty or not a mapping; re-run its `tune` job")
    return settings


def apply_tuned(spec: dict[str, Any], extra: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(spec with the tuned settings in place of the configured ones, the tuned settings);
    `extra`: the run's extra inputs (no `tuned` one: spec unchanged, no settings)."""
    path = extra.get(TUNED_INPUT)
    if not path:
        return spec, {}
    tuned = read_best(path)
    return {**spec, **tuned}, tuned

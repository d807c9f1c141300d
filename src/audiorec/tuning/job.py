"""One tuning job (rule `tune`): a study of one model x backend on one dataset's train/val."""

from __future__ import annotations

import logging
import os
from typing import Any

import optuna

from .objective import TrialRunner, TuningInputs
from .space import parse_space
from .study import default_in_space, run_study, write_outputs

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def warmup_epochs(spec: dict[str, Any]) -> int:
    """Epochs before a trial may be pruned: the model's `min_epochs` (its plateau before it takes
    off) or a fifth of its `epochs` (early epochs are noisy), whichever is later."""
    return max(int(spec.get("min_epochs") or 0), int(spec.get("epochs") or 0) // 5)


def tune(
    spec: dict[str, Any],
    space: dict[str, Any],
    backend: str,
    seed: int,
    study_seed: int,
    budget: int,
    metric: str,
    k: int,
    inputs: TuningInputs,
    journal: PathLike,
    best: PathLike,
    trials: PathLike,
    model_dirs: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Run or resume the study until `budget` finished trials; write best.json and trials.csv.
    `space` was checked against the model's settings by the workflow (rules/tuning_config.smk)."""
    # Optuna's messages (one line per finished trial) into the job's log, not the terminal
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    params = parse_space("tuning.models", space)
    runner = TrialRunner(spec, backend, seed, k, metric, params, inputs, model_dirs)
    study = run_study(
        runner,
        journal,
        name=runner.fingerprint(),
        budget=budget,
        seed=study_seed,
        default_settings=default_in_space(runner.spec, params),
        warmup_epochs=warmup_epochs(spec),
    )
    result = write_outputs(study, budget, metric, k, best, trials)
    log.info("best %s@%d on val %.5f (default %s) with %s", metric, k, result["value"], result["default_value"], result["settings"])
    return result

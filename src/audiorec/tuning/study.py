"""One study per dataset x model x backend: Optuna's TPE sampler and median pruner, a journal
file in the job's folder, run until `budget` trials have finished.

Why it looks like this:
- The budget counts finished trials, complete or pruned (Optuna's own n_trials semantics), the
  same for every backend: every backend gets the same number of evaluated settings. A failed
  trial (e.g. a learning rate that makes the loss infinite, or the trial a killed job was
  running) is replaced, up to `max_attempts(budget)` trials in all, so a space where everything
  fails stops with an error. Counting only complete trials does not work with a median pruner:
  the complete trials are the survivors, their median rises with each one, and at the default
  size a Shallow Net study pruning from the first epoch pruned 15 trials to complete 6 (RESULTS.md).
- Resumable: the study lives in a journal file (optuna JournalFileBackend) beside the outputs.
  A killed job leaves its finished trials there; the rerun marks the trial that was running
  as failed and continues. The study is named by a fingerprint of what it searches on (base
  settings, space, metric, data; not the budget), so changed settings start a fresh study
  and a raised budget continues the old one.
- Seeded: before each trial the sampler is re-seeded from (study seed, number of finished
  trials). TPE's suggestion then depends only on the finished trials, so a resumed study
  suggests what an uninterrupted one would have.
- The first trial is the model's configured settings (when they lie in the space), so the
  report can set "default" against "tuned" on the same validation measurement.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import optuna
import polars as pl
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from ..io import write_csv, write_text
from .space import Param

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
DEFAULT_ATTR = "default"  # user attribute of the trial that ran the configured settings


def study_seed(dataset: str, model: str, backend: str, seed: int) -> int:
    """The sampler's seed for one study (stable across Python runs, unlike hash())."""
    digest = hashlib.sha256(f"{dataset}\0{model}\0{backend}\0{seed}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def max_attempts(budget: int) -> int:
    """Trials (of every state) a study may start before it gives up on reaching the budget."""
    return 3 * budget + 10


def open_study(journal: PathLike, name: str) -> tuple[optuna.Study, JournalStorage]:
    Path(journal).parent.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(journal)))
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
    return study, storage


def count(study: optuna.Study, state: TrialState) -> int:
    return len(study.get_trials(deepcopy=False, states=(state,)))


def n_finished(study: optuna.Study) -> int:
    """Trials that count toward the budget: complete or pruned."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))


def run_study(
    objective: Callable[[optuna.Trial], float],
    journal: PathLike,
    name: str,
    budget: int,
    seed: int,
    default_settings: Mapping[str, Any] | None = None,
    warmup_epochs: int = 0,
    catch: tuple[type[Exception], ...] = (FloatingPointError,),
) -> optuna.Study:
    """Run (or resume) the study until `budget` trials have finished (complete or pruned); return it."""
    study, storage = open_study(journal, name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        log.info("trial %d was running when the job stopped: marked failed, it does not count", trial.number)
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    if default_settings is not None and not any(DEFAULT_ATTR in t.user_attrs for t in study.get_trials(deepcopy=False)):
        study.enqueue_trial(dict(default_settings), user_attrs={DEFAULT_ATTR: True})
    # pruning compares trials epoch by epoch; not before the model's warm-up epochs
    # (epochs count from 1; Optuna prunes from step n_warmup_steps on)
    study.pruner = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=warmup_epochs + 1)
    log.info("study %s: %d of %d budgeted trials finished", name[:12], n_finished(study), budget)
    while (finished := n_finished(study)) < budget:
        if len(study.get_trials(deepcopy=False)) >= max_attempts(budget):
            raise RuntimeError(
                f"tuning: {len(study.trials)} trials started and only {finished} of the budgeted {budget} finished "
                f"(the others failed); narrow the search space in tuning.models. The journal {journal} keeps them."
            )
        study.sampler = optuna.samplers.TPESampler(seed=(seed * 1_000_003 + finished) % 2**32)
        study.optimize(objective, n_trials=1, catch=catch)
    return study


def default_in_space(spec: Mapping[str, Any], space: tuple[Param, ...]) -> dict[str, Any] | None:
    """The configured values of the searched settings, if every one lies in its range."""
    values = {p.name: spec.get(p.name) for p in space}
    return values if all(p.contains(values[p.name]) for p in space) else None


def trials_frame(study: optuna.Study) -> pl.DataFrame:
    """trials.csv: one row per trial (number, state, value, its settings, epochs, seconds,
    whether it ran the configured settings, best value so far among complete trials)."""
    rows, best = [], None
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.COMPLETE and (best is None or t.value > best):
            best = t.value
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name,
                "value": t.value,
                "best_so_far": best,
                "default": bool(t.user_attrs.get(DEFAULT_ATTR, False)),
                "epochs_run": t.user_attrs.get("epochs_run"),
                "best_epoch": t.user_attrs.get("best_epoch"),
                "seconds": seconds,
                **{f"param_{k}": v for k, v in t.params.items()},
            }
        )
    return pl.DataFrame(rows, infer_schema_length=None)


def summary(study: optuna.Study, budget: int, metric: str, k: int) -> dict[str, Any]:
    """best.json: the best complete trial's settings and how the study went."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = max(complete, key=lambda t: (t.value, -t.number))
    default = [t for t in complete if t.user_attrs.get(DEFAULT_ATTR)]
    return {
        "settings": dict(best.params),
        "value": best.value,
        "trial": best.number,
        "metric": metric,
        "k": k,
        "budget": budget,
        "n_finished": n_finished(study),
        "n_complete": len(complete),
        "n_pruned": count(study, TrialState.PRUNED),
        "n_failed": count(study, TrialState.FAIL),
        "default_value": default[0].value if default else None,
        "default_settings": dict(default[0].params) if default else None,
    }


def write_outputs(study: optuna.Study, budget: int, metric: str, k: int, best_path: PathLike, trials_path: PathLike) -> dict[str, Any]:
    write_csv(trials_frame(study), trials_path)
    result = summary(study, budget, metric, k)
    write_text(json.dumps(result, indent=2) + "\n", best_path)
    return result

"""Outer folds of every layer × task, spread over worker processes.

A probe job's work splits into independent units: one outer fold of one layer, for every task
(the tasks of a dataset label the same tracks, so one fold's decompositions serve them all;
`fit.BasisCache`). Units neither share state nor depend on each other's results, so the
job forks `workers` processes (the threads Snakemake granted the rule) and hands them units
in layer order. Forking lets the workers inherit the tasks, folds and vector loaders
instead of pickling them; each loads the layer of its unit from the cache (one layer in memory
per worker) and holds BLAS to one thread (threadpoolctl), so `workers` processes use
`workers` cores. The results are those of the serial loop bit for bit: every unit computes
the same thing wherever it runs (tested), and `workers=1` runs the units in this process
(BLAS on one thread there too).
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from .fit import BasisCache, FoldResult, ProbeSettings, probe_fold
from .labels import Task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedTask:
    """A task restricted to the tracks that have vectors, with its fold groups and outer folds."""

    task: Task
    rows: np.ndarray  # row of each of the task's tracks in the job's vectors
    groups: np.ndarray
    truth: np.ndarray  # [N, C] (fit.truth_matrix)
    splits: list[tuple[np.ndarray, np.ndarray]]


Unit = tuple[int, int]  # (vector set, outer fold)

# The job being run: set before the pool forks, so that every worker inherits it.
_STATE: dict = {}


def _run_unit(unit: Unit) -> tuple[int, int, list[FoldResult | None]]:
    layer, fold = unit
    if _STATE.get("loaded") != layer:  # units arrive in layer order: one load per layer and worker
        _STATE["vectors"] = None  # free the previous layer before reading the next
        _STATE["vectors"] = np.asarray(_STATE["loaders"][layer](), dtype=np.float64)
        _STATE["loaded"] = layer
    x = _STATE["vectors"]
    settings: ProbeSettings = _STATE["settings"]
    cache = BasisCache()  # a fold's tasks share its training rows; other folds never reuse them
    out: list[FoldResult | None] = []
    for prepared in _STATE["tasks"]:
        if fold >= len(prepared.splits):  # fewer groups than folds: this task has fewer folds
            out.append(None)
            continue
        out.append(probe_fold(x[prepared.rows], prepared.task, prepared.truth, prepared.groups,
                              prepared.splits[fold], fold, settings, cache))
    return layer, fold, out


def _init_worker() -> None:
    threadpool_limits(limits=1)  # `workers` processes on `workers` cores, not workers × BLAS threads


def run_units(loaders: Sequence[Callable[[], np.ndarray]], tasks: Sequence[PreparedTask], settings: ProbeSettings,
              workers: int = 1) -> dict[tuple[int, int], list[FoldResult]]:
    """Fold results per (vector set, task), in fold order, of every vector set × task × outer fold.

    `loaders[i]()` returns vector set i's vectors (rows of the job's tracks); `workers` > 1 forks
    that many processes (at most one per unit)."""
    units = [(layer, fold) for layer in range(len(loaders)) for fold in range(max(len(t.splits) for t in tasks))]
    _STATE.clear()
    _STATE.update(loaders=list(loaders), tasks=list(tasks), settings=settings)
    workers = max(1, min(int(workers), len(units)))
    started = time.perf_counter()
    try:
        if workers == 1:
            with threadpool_limits(limits=1):  # one core, as in each worker
                done = [_run_unit(unit) for unit in units]
        else:
            # an executor, not multiprocessing.Pool: a worker killed (e.g. out of memory) fails
            # the job with BrokenProcessPool instead of leaving it waiting forever
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
                done = list(pool.map(_run_unit, units))
    finally:
        _STATE.clear()
    log.info("%d unit(s) (vector set × outer fold) on %d worker(s) in %.1f s", len(units), workers, time.perf_counter() - started)
    results: dict[tuple[int, int], list[FoldResult]] = {}
    for layer, _, per_task in done:  # in unit order, i.e. fold order within a vector set
        for t, fold in enumerate(per_task):
            if fold is not None:
                results.setdefault((layer, t), []).append(fold)
    return results

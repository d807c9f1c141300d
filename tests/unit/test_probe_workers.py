"""The probe job's units (vector set × outer fold) give the same results in worker processes."""

from __future__ import annotations

import os
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pytest

from audiorec.probes.fit import ProbeSettings, outer_splits, run_probe, truth_matrix
from audiorec.probes.labels import Task
from audiorec.probes.workers import PreparedTask, run_units


def test_forked_workers_reproduce_the_serial_probe_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    n = 120
    ids = [str(i) for i in range(n)]
    groups = np.repeat(np.arange(n // 3), 3).astype(str).astype(object)
    layers = [rng.standard_normal((n, 9)), rng.standard_normal((n, 30))]
    layers[1][:, 4] = 2.0  # a dead unit
    genre = rng.integers(0, 3, n)
    tasks = [
        Task("genre", "single", "x", ids, genre, ["a", "b", "c"]),
        Task("tags", "multilabel", "x", ids, np.stack([genre == 0, rng.random(n) < 0.4], axis=1).astype(np.int64), ["p", "q"]),
        Task("tempo", "regression", "x", ids, layers[0][:, 0] + rng.standard_normal(n), []),
    ]
    settings = ProbeSettings(folds=3, inner_folds=2, alphas=(1.0, 30.0))
    prepared = [PreparedTask(t, np.arange(n), groups, truth_matrix(t), outer_splits(t, groups, settings)) for t in tasks]
    loaders = [lambda x=x: x.astype(np.float32) for x in layers]
    serial = run_units(loaders, prepared, settings, workers=1)
    forked = run_units(loaders, prepared, settings, workers=2)
    assert set(serial) == set(forked) == {(v, t) for v in range(2) for t in range(3)}
    for key, folds in serial.items():
        assert [f.alpha for f in folds] == [f.alpha for f in forked[key]]
        for a, b in zip(folds, forked[key], strict=True):
            np.testing.assert_array_equal(a.pred, b.pred)
            assert a.scores == b.scores
        # and a unit is the same computation as the one-task probe
        layer, t = key
        alone = run_probe(layers[layer].astype(np.float32), tasks[t], groups, settings)
        np.testing.assert_array_equal(np.concatenate([f.pred for f in folds]), np.concatenate([alone.pred[te] for _, te in prepared[t].splits]))


def test_a_worker_that_dies_fails_the_job_instead_of_hanging() -> None:
    n = 30
    ids = [str(i) for i in range(n)]
    groups = np.repeat(np.arange(10), 3).astype(str).astype(object)
    task = Task("tempo", "regression", "x", ids, np.arange(n, dtype=float), [])
    settings = ProbeSettings(folds=2, inner_folds=2, alphas=(1.0,))
    prepared = [PreparedTask(task, np.arange(n), groups, truth_matrix(task), outer_splits(task, groups, settings))]

    def dies() -> np.ndarray:
        os._exit(9)  # as the kernel's OOM killer would end it

    with pytest.raises(BrokenProcessPool):
        run_units([dies], prepared, settings, workers=2)

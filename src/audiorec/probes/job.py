"""The probe job: every cached layer of one backend (or seeded random vectors) × every task.

Reads only the embedding cache (`/layers`, else `/embeddings`, via `extraction.store`) and
the dataset's label files, never audio or backend code: a new backend adds one probe job.
The `random` job draws seeded Gaussian vectors for the indexed tracks, the floor a probe
must clear ("above random"), as random vectors are for the recommenders.

Writes
- `scores.csv`: per layer × task × metric the score of the pooled out-of-fold predictions,
  the mean and standard deviation over outer folds, tracks, folds and chosen strengths;
- `predictions.parquet`: per layer × task × track the outer fold, truth and prediction
  ([C] lists), which the report resamples for bootstrap intervals;
- `probe.json`: what was probed, the fold groups, times and skipped tasks.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial

import numpy as np
import polars as pl

from ..extraction.store import (
    read_attrs,
    read_embeddings,
    read_layer_info,
    read_layers,
    read_track_ids,
)
from ..io import write_csv, write_parquet, write_text
from .fit import ProbeSettings, assemble, outer_splits, truth_matrix
from .labels import LabelSettings, Task, load_tasks, track_groups
from .metrics import METRICS, scores
from .workers import PreparedTask, run_units

log = logging.getLogger(__name__)

RANDOM = "random"
MEAN_LAYER = "mean"
EMBEDDING_LAYER = "embedding"


@dataclass(frozen=True)
class VectorSource:
    """One vector set to probe, loaded only when a worker needs it (one layer in memory at a time)."""

    name: str  # layer name
    index: int | None  # position in /layers; None for the mean or random vectors
    configured: bool  # the vector the recommenders use (`layer:` of the backend)
    load: Callable[[], np.ndarray]  # the vectors [N, D], rows in the job's track order


def configured_layer_name(setting: object, names: list[str]) -> str:
    """The layer `/embeddings` holds, from the cache's `layer` attribute (`last`, `mean`, a name or an index)."""
    text = str(setting) if setting is not None else "last"
    if text in ("last", "null", "None", ""):
        return names[-1]
    if text == MEAN_LAYER or text in names:
        return text
    try:
        return names[int(text) % len(names)]
    except ValueError:
        raise ValueError(f"the cache's layer attribute {text!r} names none of its layers {names}") from None


def cached_vector_sources(path: str | os.PathLike[str]) -> tuple[list[str], list[VectorSource]]:
    """The cache's track ids (shared by all its layers) and every cached layer, then `/embeddings`
    itself where it is none of them (`mean`)."""
    info = read_layer_info(path)
    configured = configured_layer_name(read_attrs(path).get("layer"), info.names)
    ids = read_track_ids(path)
    sources = [
        VectorSource(name, index, name == configured, partial(_read_layer, str(path), index))
        for index, name in enumerate(info.names)
    ]
    if configured not in info.names:
        sources.append(VectorSource(configured, None, True, partial(_read_embeddings, str(path))))
    return ids, sources


def _read_layer(path: str, index: int) -> np.ndarray:
    return read_layers(path, index)[1]


def _read_embeddings(path: str) -> np.ndarray:
    return read_embeddings(path)[1]


def random_vector_source(tracks_path: str | os.PathLike[str], dim: int, seed: int) -> tuple[list[str], VectorSource]:
    """Seeded standard-normal vectors for every track the index could decode."""
    tracks = pl.read_parquet(tracks_path)
    if "status" in tracks.columns:
        tracks = tracks.filter(pl.col("status") == "ok")
    ids = sorted(tracks["track_id"].cast(pl.String).to_list())
    vectors = np.random.default_rng(seed).standard_normal((len(ids), dim)).astype(np.float32)
    return ids, VectorSource(RANDOM, None, True, lambda: vectors)


def _prepare(task: Task, all_ids: list[str], group_of: dict[str, str], settings: ProbeSettings) -> PreparedTask:
    """The task restricted to tracks that have a vector, their rows, groups and outer folds."""
    row = {t: i for i, t in enumerate(all_ids)}
    keep = np.asarray([t in row for t in task.track_ids], dtype=bool)
    if not keep.all():
        log.info("task %s: %d labelled track(s) have no vector in this cache; left out", task.name, int((~keep).sum()))
    ids = [t for t, k in zip(task.track_ids, keep) if k]
    sub = Task(task.name, task.kind, task.source, ids, task.y[keep], task.classes)
    groups = np.asarray([group_of.get(t, f"track:{t}") for t in ids], dtype=object)
    rows = np.asarray([row[t] for t in ids], dtype=np.int64)
    return PreparedTask(sub, rows, groups, truth_matrix(sub), outer_splits(sub, groups, settings))


@dataclass(frozen=True)
class ProbeJob:
    dataset_dir: str
    dataset_format: str
    scores: str
    predictions: str
    info: str
    embeddings: str | None = None  # None: random vectors
    tracks: str | None = None  # the track index, for random vectors
    random_dim: int = 128


def run_probe_job(job: ProbeJob, labels: LabelSettings, settings: ProbeSettings, backend: str, workers: int = 1) -> None:
    """Probe every vector set of the job on every task; `workers` processes share the outer
    folds (`audiorec.probes.workers`; the outputs do not depend on their number)."""
    started = time.perf_counter()
    if job.embeddings is None:
        if job.tracks is None:
            raise ValueError("the random probe needs the track index (tracks.parquet)")
        all_ids, source = random_vector_source(job.tracks, job.random_dim, settings.seed)
        sources = [source]
    else:
        all_ids, sources = cached_vector_sources(job.embeddings)
    tasks = load_tasks(job.dataset_dir, job.dataset_format, all_ids, labels)
    if not tasks:
        raise ValueError(
            f"no probe task: {job.dataset_dir} has no usable label file (docs/probes.md lists them); "
            "disable probes (`probes: {enable: false}`) for this dataset or add id_genres.tsv"
        )
    groups_all, group_kind = track_groups(job.dataset_dir, all_ids)
    group_of = dict(zip(all_ids, groups_all))
    prepared = [_prepare(task, all_ids, group_of, settings) for task in tasks]
    folds = run_units([s.load for s in sources], prepared, settings, workers)
    score_rows: list[dict] = []
    pred_frames: list[pl.DataFrame] = []
    timings: dict[str, float] = {}
    for v, vectors in enumerate(sources):
        timings[vectors.name] = 0.0
        for t, task in enumerate(prepared):
            sub = task.task
            result = assemble(sub, task.splits, folds[v, t])
            timings[vectors.name] += sum(f.seconds for f in folds[v, t])
            pooled = scores(sub.kind, task.truth, result.pred)
            for metric in METRICS[sub.kind]:
                per_fold = np.asarray([fs[metric] for fs in result.fold_scores], dtype=np.float64)
                finite = per_fold[np.isfinite(per_fold)]
                score_rows.append({
                    "backend": backend, "layer": vectors.name, "layer_index": vectors.index,
                    "configured": vectors.configured, "task": sub.name, "kind": sub.kind, "metric": metric,
                    "value": pooled[metric],
                    "fold_mean": float(finite.mean()) if len(finite) else float("nan"),
                    "fold_sd": float(finite.std(ddof=1)) if len(finite) > 1 else float("nan"),
                    "n_tracks": len(sub.track_ids), "n_classes": len(sub.classes), "folds": len(result.fold_scores),
                    "alphas": " ".join(f"{a:g}" for a in result.alphas),
                })
            pred_frames.append(pl.DataFrame({
                "layer": vectors.name, "task": sub.name, "track_id": sub.track_ids, "fold": result.fold,
                "truth": task.truth.astype(np.float32).tolist(),
                "pred": result.pred.astype(np.float32).tolist(),
            }, schema={"layer": pl.String, "task": pl.String, "track_id": pl.String, "fold": pl.Int64,
                       "truth": pl.List(pl.Float32), "pred": pl.List(pl.Float32)}))
        timings[vectors.name] = round(timings[vectors.name], 3)
        log.info("layer %s: %d task(s) probed in %.1f s of worker time", vectors.name, len(tasks), timings[vectors.name])
    write_csv(pl.DataFrame(score_rows), job.scores)
    write_parquet(pl.concat(pred_frames), job.predictions)
    info = {
        "backend": backend, "embeddings": job.embeddings, "groups": group_kind,
        "n_groups": len(set(groups_all)), "tasks": {t.name: {"kind": t.kind, "source": t.source, "tracks": len(t.track_ids), "classes": t.classes} for t in tasks},
        "layers": list(timings), "seconds_per_layer": timings, "workers": workers, "seconds": round(time.perf_counter() - started, 3),
        "settings": {**asdict(settings), **{f"labels_{k}": v for k, v in asdict(labels).items()}},
    }
    write_text(json.dumps(info, indent=2, default=str) + "\n", job.info)
    log.info("probes of %s done in %.1f s", backend, info["seconds"])

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
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from ..extraction.store import read_attrs, read_embeddings, read_layer_info, read_layers
from ..io import write_csv, write_parquet, write_text
from .fit import BasisCache, ProbeSettings, run_probe, truth_matrix
from .labels import LabelSettings, Task, load_tasks, track_groups
from .metrics import METRICS, scores

log = logging.getLogger(__name__)

RANDOM = "random"
MEAN_LAYER = "mean"
EMBEDDING_LAYER = "embedding"


@dataclass(frozen=True)
class VectorSet:
    name: str  # layer name
    index: int | None  # position in /layers; None for the mean or random vectors
    configured: bool  # the vector the recommenders use (`layer:` of the backend)
    track_ids: list[str]
    vectors: np.ndarray


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


def cached_vector_sets(path: str | os.PathLike[str]) -> Iterator[VectorSet]:
    """Every cached layer (one at a time), then `/embeddings` itself where it is none of them (`mean`)."""
    info = read_layer_info(path)
    configured = configured_layer_name(read_attrs(path).get("layer"), info.names)
    for index, name in enumerate(info.names):
        ids, vectors = read_layers(path, index)
        yield VectorSet(name, index, name == configured, ids, vectors)
    if configured not in info.names:
        ids, vectors = read_embeddings(path)
        yield VectorSet(configured, None, True, ids, vectors)


def random_vector_set(tracks_path: str | os.PathLike[str], dim: int, seed: int) -> VectorSet:
    """Seeded standard-normal vectors for every track the index could decode."""
    tracks = pl.read_parquet(tracks_path)
    if "status" in tracks.columns:
        tracks = tracks.filter(pl.col("status") == "ok")
    ids = sorted(tracks["track_id"].cast(pl.String).to_list())
    rng = np.random.default_rng(seed)
    return VectorSet(RANDOM, None, True, ids, rng.standard_normal((len(ids), dim)).astype(np.float32))


def _align(vectors: VectorSet, task: Task) -> tuple[Task, np.ndarray]:
    """The task restricted to tracks that have a vector, and their vectors in the task's order."""
    row = {t: i for i, t in enumerate(vectors.track_ids)}
    keep = np.asarray([t in row for t in task.track_ids], dtype=bool)
    if not keep.all():
        log.info("task %s: %d labelled track(s) have no vector in this cache; left out", task.name, int((~keep).sum()))
    ids = [t for t, k in zip(task.track_ids, keep) if k]
    sub = Task(task.name, task.kind, task.source, ids, task.y[keep], task.classes)
    return sub, vectors.vectors[[row[t] for t in ids]]


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


def run_probe_job(job: ProbeJob, labels: LabelSettings, settings: ProbeSettings, backend: str) -> None:
    started = time.perf_counter()
    if job.embeddings is None:
        if job.tracks is None:
            raise ValueError("the random probe needs the track index (tracks.parquet)")
        sets: Iterator[VectorSet] = iter([random_vector_set(job.tracks, job.random_dim, settings.seed)])
    else:
        sets = cached_vector_sets(job.embeddings)
    first = next(sets)
    all_ids = first.track_ids
    tasks = load_tasks(job.dataset_dir, job.dataset_format, all_ids, labels)
    if not tasks:
        raise ValueError(
            f"no probe task: {job.dataset_dir} has no usable label file (docs/probes.md lists them); "
            "disable probes (`probes: {enable: false}`) for this dataset or add id_genres.tsv"
        )
    groups_all, group_kind = track_groups(job.dataset_dir, all_ids)
    group_of = dict(zip(all_ids, groups_all))
    score_rows: list[dict] = []
    pred_frames: list[pl.DataFrame] = []
    timings: dict[str, float] = {}
    for vectors in _chain(first, sets):
        t0 = time.perf_counter()
        cache = BasisCache()  # tasks on the same tracks share folds, hence decompositions
        for task in tasks:
            sub, x = _align(vectors, task)
            groups = np.asarray([group_of.get(t, f"track:{t}") for t in sub.track_ids], dtype=object)
            result = run_probe(x, sub, groups, settings, cache)
            pooled = scores(sub.kind, truth_matrix(sub), result.pred)
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
                "truth": truth_matrix(sub).astype(np.float32).tolist(),
                "pred": result.pred.astype(np.float32).tolist(),
            }, schema={"layer": pl.String, "task": pl.String, "track_id": pl.String, "fold": pl.Int64,
                       "truth": pl.List(pl.Float32), "pred": pl.List(pl.Float32)}))
        timings[vectors.name] = round(time.perf_counter() - t0, 3)
        log.info("layer %s: %d task(s) probed in %.1f s (%d decompositions, %d reused)", vectors.name, len(tasks),
                 timings[vectors.name], cache.misses, cache.hits)
        cache.clear()
    write_csv(pl.DataFrame(score_rows), job.scores)
    write_parquet(pl.concat(pred_frames), job.predictions)
    info = {
        "backend": backend, "embeddings": job.embeddings, "groups": group_kind,
        "n_groups": len(set(groups_all)), "tasks": {t.name: {"kind": t.kind, "source": t.source, "tracks": len(t.track_ids), "classes": t.classes} for t in tasks},
        "layers": list(timings), "seconds_per_layer": timings, "seconds": round(time.perf_counter() - started, 3),
        "settings": {**asdict(settings), **{f"labels_{k}": v for k, v in asdict(labels).items()}},
    }
    write_text(json.dumps(info, indent=2, default=str) + "\n", job.info)
    log.info("probes of %s done in %.1f s", backend, info["seconds"])


def _chain(first: VectorSet, rest: Iterator[VectorSet]) -> Iterator[VectorSet]:
    yield first
    yield from rest

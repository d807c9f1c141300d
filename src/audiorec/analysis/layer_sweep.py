"""Which layer of a backend serves recommendation best? One model, every cached layer.

Transformer backends (and MusiCNN's four exposed layers) cache the time-mean of every
hidden layer in `/layers` of their embedding file; `/embeddings` is only the configured
one. The sweep reads the cache layer by layer and runs the same recommender on each,
without touching the audio model: building an item-vector table from a cached layer is
all that differs from a normal run. Everything after that is shared with the training
job: the model (`build_model`, `fit` for neural ones), the ranking (`Factors.rank` with the
split's candidates, so cold-item splits work too), the recommendation frame and the
evaluate rule's per-user metrics, so a layer's numbers are computed exactly as a run's.

Every layer is read from `/layers` (float16), also the configured one, so that all
layers of a backend are compared at the same precision; the configured layer is checked
against `/embeddings` (it must agree to float16 rounding, or the cache is inconsistent)
and flagged. When every layer has the same width, the mean over layers (the `layer: mean`
setting) is evaluated as one more point, named `mean`; for a trained model (shallow, bert4rec,
sasrec with items content or hybrid) also the learned mixture of all layers (`layers:
weighted`, models.items), named `weighted`, with its learned weights in sweep.json: whether
the mixture beats the best single layer is then read off the same table.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from ..evaluation.metrics import per_user_metrics
from ..evaluation.ranking import recommendations_frame
from ..extraction.store import (
    LayerInfo,
    read_attrs,
    read_embeddings,
    read_layer_info,
    read_layers,
)
from ..io import write_parquet, write_text
from ..models.base import NeuralRecommender
from ..models.data import SplitData, load_split, read_part
from ..models.item_vectors import align_embeddings, load_layer_stack
from ..models.items import (
    WEIGHTED_ITEM_MODES,
    ItemSettings,
    normalize_vectors,
    prepare_content,
)
from ..models.registry import declaration
from ..models.run import RUN_SELECTION_KEYS, build_model, layer_weights, pick_device
from ..models.training import TrainSettings, fit
from ..runtime import progress

log = logging.getLogger(__name__)

MEAN_LAYER = "mean"
WEIGHTED_LAYER = "weighted"
SWEEP_MODEL_TYPES = ("knn", "shallow", "bert4rec", "sasrec")
# float16 keeps 11 significant bits: a cached layer agrees with /embeddings to this relative error.
FLOAT16_RTOL = 2.0**-10


@dataclass(frozen=True)
class SweepPaths:
    train: str
    val: str
    test: str
    embeddings: str
    metrics: str  # per-user metrics of every layer and split (parquet)
    info: str  # what happened per layer (json)
    catalogue: str | None = None  # a cold-item split's catalogue.parquet
    known: str | None = None  # the split's known.parquet: what ranking excludes


class LayerMismatchError(ValueError):
    """The configured layer in `/layers` is not the vector in `/embeddings`."""


def configured_layer(attrs: dict[str, Any], info: LayerInfo) -> str:
    """Name of the layer `/embeddings` holds (or `mean`), from the file's `layer` attribute."""
    setting = str(attrs.get("layer", "last"))
    names = info.names
    if setting in ("last", "null", "None", ""):
        return names[-1]
    if setting == MEAN_LAYER:
        return MEAN_LAYER
    if setting in names:
        return setting
    try:
        index = int(setting)
    except ValueError:
        raise ValueError(f"the cache's layer attribute {setting!r} names none of its layers {names}") from None
    if not -len(names) <= index < len(names):
        raise ValueError(f"the cache's layer attribute {setting!r} is out of range for {len(names)} layers")
    return names[index % len(names)]


@dataclass(frozen=True)
class Layer:
    index: int | None  # None for the mean over layers
    name: str
    track_ids: list[str]
    vectors: np.ndarray  # float32 [N, D]
    magnitude: np.ndarray  # |value| each entry's float16 rounding is relative to


def has_mean_layer(info: LayerInfo) -> bool:
    return len(info.names) > 1 and len(set(info.dims)) == 1


def iter_layers(path: str | os.PathLike[str], info: LayerInfo) -> Iterator[Layer]:
    """Every cached layer, then the mean over layers when all share a width; one layer in
    memory at a time (plus the running sums for the mean)."""
    total: np.ndarray | None = None
    total_abs: np.ndarray | None = None
    ids: list[str] = []
    for index, name in enumerate(info.names):
        ids, vectors = read_layers(path, index)
        if has_mean_layer(info):
            if total is None or total_abs is None:
                total, total_abs = vectors.astype(np.float64), np.abs(vectors).astype(np.float64)
            else:
                total += vectors
                total_abs += np.abs(vectors)
        yield Layer(index, name, ids, vectors, np.abs(vectors))
    if total is not None and total_abs is not None:
        n = len(info.names)
        yield Layer(None, MEAN_LAYER, ids, (total / n).astype(np.float32), (total_abs / n).astype(np.float32))


def check_configured(layer: Layer, embeddings: np.ndarray, where: str) -> float:
    """Largest deviation of the configured layer from `/embeddings`, relative to the largest
    magnitude; raises when it exceeds float16 rounding."""
    if layer.vectors.shape != embeddings.shape:
        raise LayerMismatchError(f"{where}: configured layer is {layer.vectors.shape}, /embeddings {embeddings.shape}")
    scale = max(float(np.abs(embeddings).max(initial=0.0)), 1e-12)
    deviation = np.abs(layer.vectors - embeddings)
    # float16 rounding is relative to each value (to the mean magnitude for the layer mean);
    # float16 subnormals (below 6.1e-5) have an absolute spacing of 6e-8
    allowed = FLOAT16_RTOL * np.maximum(layer.magnitude, np.abs(embeddings)) + 6e-8
    if (deviation > allowed).any():
        worst = float((deviation / (np.maximum(layer.magnitude, np.abs(embeddings)) + 1e-12)).max())
        raise LayerMismatchError(
            f"{where}: the configured layer in /layers differs from /embeddings (relative error up to "
            f"{worst:.3g}, float16 allows {FLOAT16_RTOL:.1g}); the cache is inconsistent. Re-run its `embed` rule."
        )
    return float(deviation.max(initial=0.0) / scale)


def evaluate_layer(
    spec: dict[str, Any],
    backend: str,
    seed: int,
    k: int,
    data: SplitData,
    truth: dict[str, pl.DataFrame],
    vectors: np.ndarray,
    layer_names: tuple[str, ...] = (),
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Per-user metrics (val and test) of one model on one set of item vectors: [N, D] (one
    layer; the spec's `layers` is ignored) or [N, L, D] with `layer_names` (the learned mixture)."""
    torch.manual_seed(seed)
    weighted = vectors.ndim == 3
    spec = {**spec, "layers": WEIGHTED_LAYER if weighted else "configured"}
    settings = ItemSettings.from_config(spec, backend)
    if weighted:  # each layer normalised on its own, as a `layers: weighted` run does
        vectors = np.stack([normalize_vectors(vectors[:, i], settings.normalize) for i in range(vectors.shape[1])], axis=1)
    else:
        vectors = prepare_content(vectors, settings, seed)  # normalize, matched_random
    view = _ItemVectorsView(vectors, layer_names)
    model = build_model(spec, backend, data, view, seed)  # type: ignore[arg-type]
    info: dict[str, Any] = {}
    if isinstance(model, NeuralRecommender):
        model.to(pick_device(spec.get("device", "auto")))
        result = fit(model, data, TrainSettings.from_config(spec, k), seed)
        model.eval()
        info.update(best_epoch=result.best_epoch, epochs_run=len(result.history), best_val_metric=result.best_value)
    if weighted:
        info["layer_weights"] = layer_weights(model, view)  # type: ignore[arg-type]
    frames = []
    with torch.no_grad():
        factors = model.factors()
        for name in ("val", "test"):
            top = data.rank(factors, data.parts[name].users, k)
            recs = recommendations_frame(top, data.user_ids, data.track_ids)
            metrics = per_user_metrics(recs, truth[name], k, source=f"layer sweep ({name})")
            frames.append(metrics.with_columns(pl.lit(name).alias("split")))
    return pl.concat(frames), info


@dataclass(frozen=True)
class _ItemVectorsView:
    """What build_model (and layer_weights) read of an ItemVectors."""

    vectors: np.ndarray
    layer_names: tuple[str, ...] = ()


def mixes_layers(spec: dict[str, Any], info: LayerInfo) -> bool:
    """Whether the sweep adds the learned mixture (`weighted`): a trained model whose items are
    content (or hybrid), and several cached layers of one width."""
    trained = declaration(spec["type"]).gpu
    return trained and spec.get("items", "content") in WEIGHTED_ITEM_MODES and has_mean_layer(info)


def sweep_layers(spec: dict[str, Any], backend: str, seed: int, k: int, paths: SweepPaths) -> pl.DataFrame:
    """Evaluate one model on every cached layer of `paths.embeddings`; write metrics and info."""
    started = time.perf_counter()
    spec = {key: value for key, value in spec.items() if key not in RUN_SELECTION_KEYS}
    if spec["type"] not in SWEEP_MODEL_TYPES:
        raise ValueError(f"layer sweep: model type {spec['type']!r} uses no item vectors; sweep {SWEEP_MODEL_TYPES}")
    split = load_split(paths.train, paths.val, paths.test, paths.catalogue, paths.known)
    truth = {name: read_part(getattr(paths, name)) for name in ("val", "test")}
    info_layers = read_layer_info(paths.embeddings)
    configured = configured_layer(read_attrs(paths.embeddings), info_layers)
    store_ids, embeddings = read_embeddings(paths.embeddings)
    max_missing = float(spec.get("max_missing_share", 1.0))
    log.info(
        "%s on %s, seed %d: %d layers %s (configured: %s), %d users, %d tracks, %s candidates",
        spec["type"], paths.embeddings, seed, len(info_layers.names), info_layers.names, configured,
        split.n_users, split.n_items, "all" if split.candidates is None else len(split.candidates),
    )
    frames, per_layer = [], []
    layers = iter_layers(paths.embeddings, info_layers)
    total = len(info_layers.names) + has_mean_layer(info_layers)
    for layer in progress(layers, total=total, desc="layers", unit="layer"):
        t0 = time.perf_counter()
        index, name = layer.index, layer.name
        is_configured = name == configured
        record: dict[str, Any] = {"layer": index, "layer_name": name, "dim": int(layer.vectors.shape[1])}
        if is_configured:
            if layer.track_ids != store_ids:
                raise LayerMismatchError(f"{paths.embeddings}: /layers and /embeddings list different tracks")
            record["max_deviation_from_embeddings"] = check_configured(layer, embeddings, paths.embeddings)
        aligned = align_embeddings(
            split.track_ids, layer.track_ids, layer.vectors, max_missing, source=f"{paths.embeddings} [{name}]"
        )
        # a layer's missing tracks leave inputs and candidates, as in a training run
        data = split.for_vectors(~aligned.missing)
        metrics, extra = evaluate_layer(spec, backend, seed, k, data, truth, aligned.vectors)
        frames.append(
            metrics.with_columns(
                pl.lit(index, dtype=pl.Int64).alias("layer"),
                pl.lit(name).alias("layer_name"),
                pl.lit(is_configured).alias("configured"),
            )
        )
        record.update(extra, configured=is_configured, n_missing=aligned.n_missing, seconds=time.perf_counter() - t0)
        val = metrics.filter(pl.col("split") == "val")
        record["val_ndcg"] = float(val["ndcg"].mean()) if val.height else None
        per_layer.append(record)
        log.info("layer %s (%s): val ndcg@%d %.4f, %.1fs", index, name, k, record["val_ndcg"] or 0.0, record["seconds"])
    if mixes_layers(spec, info_layers):
        t0 = time.perf_counter()
        stack = load_layer_stack(paths.embeddings, split.track_ids, backend, max_missing)
        data = split.for_vectors(~stack.missing)
        metrics, extra = evaluate_layer(spec, backend, seed, k, data, truth, stack.vectors, stack.layer_names)
        frames.append(
            metrics.with_columns(
                pl.lit(None, dtype=pl.Int64).alias("layer"), pl.lit(WEIGHTED_LAYER).alias("layer_name"),
                pl.lit(False).alias("configured"),
            )
        )
        val = metrics.filter(pl.col("split") == "val")
        record = {"layer": None, "layer_name": WEIGHTED_LAYER, "dim": stack.dim, **extra, "configured": False,
                  "n_missing": stack.n_missing, "seconds": time.perf_counter() - t0,
                  "val_ndcg": float(val["ndcg"].mean()) if val.height else None}
        per_layer.append(record)
        log.info("learned mixture: val ndcg@%d %.4f, weights %s", k, record["val_ndcg"] or 0.0, extra.get("layer_weights"))
    if configured not in [r["layer_name"] for r in per_layer]:
        raise LayerMismatchError(f"{paths.embeddings}: its configured layer {configured!r} is not among the swept layers")
    columns = ["layer", "layer_name", "configured", "split", "user_id", "hitrate", "recall", "ndcg", "mrr", "precision"]
    result = pl.concat(frames).select(columns)
    write_parquet(result, paths.metrics)
    summary = {
        "model": spec["type"],
        "backend": backend,
        "seed": seed,
        "k": k,
        "embeddings": str(paths.embeddings),
        "configured_layer": configured,
        "layers": per_layer,
        "seconds": time.perf_counter() - started,
    }
    write_text(json.dumps(summary, indent=2, default=str) + "\n", Path(paths.info))
    log.info("swept %d layers in %.1fs", len(per_layer), summary["seconds"])
    return result

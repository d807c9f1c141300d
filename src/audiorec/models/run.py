"""One training job: a model x backend x seed, from the split and embeddings to its run folder.

Writes (ARCHITECTURE §3) `recs_val.parquet`, `recs_test.parquet` (top-K per evaluated user,
train tracks removed), `history.csv` (one row per epoch; one row "epoch 0" for models
without training), `model.pt` (learned tensors plus the user and track ids they index,
loadable with `torch.load(..., weights_only=True)`), `run.json` (what happened: sizes,
fallback items, best epoch, timing). Neural models checkpoint after every epoch to
`checkpoint.pt` beside them, resume from it on a retry and delete it once the outputs exist.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from ..evaluation.ranking import recommendations_frame
from ..io import atomic_path, write_csv, write_parquet, write_text
from .base import NeuralRecommender, Recommender
from .data import SplitData, load_split
from .item_vectors import ItemVectors
from .items import ItemInput, ItemSettings, item_vectors_for
from .registry import RunContext, builder, declaration
from .training import FitResult, TrainSettings, evaluate_part, fit
from .tuned import TUNED_INPUT, apply_tuned

log = logging.getLogger(__name__)

# Config keys that choose which runs exist, not how one run trains: kept out of a job's params.
RUN_SELECTION_KEYS = ("backends", "random_baseline")

__all__ = ["RUN_SELECTION_KEYS", "RunPaths", "build_model", "item_vectors_for", "layer_weights", "pick_device", "train_run"]


@dataclass(frozen=True)
class RunPaths:
    train: str
    val: str
    test: str
    embeddings: str | None
    recs_val: str
    recs_test: str
    history: str
    weights: str
    info: str
    catalogue: str | None = None  # a cold-item split's catalogue.parquet (docs/beyond.md)
    known: str | None = None  # the split's known.parquet: what ranking excludes (docs/split.md)
    extra: dict[str, str] = field(default_factory=dict)  # other jobs' outputs the model type declares

    @property
    def checkpoint(self) -> Path:
        return Path(self.weights).with_name("checkpoint.pt")


def pick_device(setting: str = "auto") -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("models.<model>.device is 'cuda' but no CUDA device is visible; use 'auto' or 'cpu'")
    return torch.device(setting)


def resolve_precision(setting: str, device: torch.device) -> str:
    """`auto`: bf16 on a CUDA device that supports it, fp32 elsewhere (CPUs without native
    bf16 emulate it slowly; CPU fp32 runs are bit-for-bit reproducible)."""
    if setting != "auto":
        return setting
    return "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"


def build_model(
    spec: dict[str, Any],
    backend: str,
    data: SplitData,
    vectors: ItemVectors | None,
    seed: int = 0,
    inputs: dict[str, str] | None = None,
    model_dirs: tuple[str, ...] = (),
) -> Recommender:
    """The model of one run, made by its type's declared module (models.registry): no
    per-type code here."""
    decl = declaration(spec["type"], model_dirs)
    device = pick_device(spec.get("device", "auto"))
    items = ItemSettings.from_config(spec, backend) if decl.reads_embeddings else None
    if items is not None and items.weighted and not decl.gpu:
        raise ValueError(
            f"model type {decl.type!r} learns nothing, so it cannot learn layer weights: `layers: weighted` is "
            f"for the trained models (shallow, bert4rec, sasrec); pick one layer with the backend's `layer:`"
        )
    context = RunContext(
        spec=spec,
        backend=backend,
        seed=seed,
        data=data,
        vectors=vectors,
        items=items,
        device=device,
        precision=resolve_precision(spec.get("precision", "fp32"), device),
        inputs=dict(inputs or {}),
    )
    model = builder(decl)(context)
    if items is not None and items.weighted and layer_weights(model, vectors) is None:
        raise ValueError(f"model type {decl.type!r} does not take its items through ItemInput, so `layers: weighted` cannot reach it")
    return model


def layer_weights(model: Recommender, vectors: ItemVectors | None) -> dict[str, float] | None:
    """The learned mixture over the cached layers of a `layers: weighted` run ({layer: weight},
    summing to 1), read from the model's shared item input; None for any other run."""
    item_input = getattr(model, "items", None)
    if vectors is None or not isinstance(item_input, ItemInput):
        return None
    return item_input.layer_weights(vectors.layer_names)


def fingerprint(spec: dict[str, Any], backend: str, seed: int, k: int, data: SplitData, vectors: ItemVectors | None) -> str:
    """Identity of a training run's inputs: a checkpoint is only resumed by the same run."""
    h = hashlib.sha256()
    h.update(json.dumps({"spec": spec, "backend": backend, "seed": seed, "k": k}, sort_keys=True, default=str).encode())
    for ids in (data.user_ids, data.track_ids):
        h.update("\x00".join(ids).encode())
    for arr in (data.train.indptr, data.train.indices, data.parts["val"].relevant.indices):
        h.update(np.ascontiguousarray(arr).tobytes())
    if vectors is not None:
        h.update(np.ascontiguousarray(vectors.vectors).tobytes())
    if data.candidates is not None:
        h.update(b"candidates" + np.ascontiguousarray(data.candidates).tobytes())
    return h.hexdigest()


def train_run(
    spec: dict[str, Any], backend: str, seed: int, k: int, paths: RunPaths, model_dirs: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Train (or fit) one model on the split and write every output of its run folder.
    `model_dirs`: folders of model types declared outside the package."""
    started = time.perf_counter()
    spec = {key: value for key, value in spec.items() if key not in RUN_SELECTION_KEYS}
    # a tuned model: its tuning job's best settings replace the configured ones (models.tuned)
    spec, tuned = apply_tuned(spec, paths.extra)
    extra = {name: path for name, path in paths.extra.items() if name != TUNED_INPUT}
    kind = spec["type"]
    decl = declaration(kind, model_dirs)
    split = load_split(paths.train, paths.val, paths.test, paths.catalogue, paths.known)
    data = split
    log.info(
        "%s/%s seed %d: %d users, %d tracks, %d train rows, %d val users, %d test users",
        kind, backend, seed, data.n_users, data.n_items, data.n_train,
        len(data.parts["val"].users), len(data.parts["test"].users),
    )
    vectors = item_vectors_for(spec, backend, split, seed, paths.embeddings) if decl.reads_embeddings else None
    n_missing = 0 if vectors is None else vectors.n_missing
    if n_missing:
        data = split.for_vectors(~vectors.missing)
    torch.manual_seed(seed)
    model = build_model(spec, backend, data, vectors, seed, extra, model_dirs)
    items = ItemSettings.from_config(spec, backend) if decl.reads_embeddings else None
    info: dict[str, Any] = {
        "model": kind,
        "backend": backend,
        "seed": seed,
        "k": k,
        "n_users": data.n_users,
        "n_items": data.n_items,
        "n_train": data.n_train,
        "vector_dim": None if vectors is None else vectors.dim,
        # how tracks enter the model (models.items): the `random` backend is always `id`
        "items": None if items is None else items.mode,
        "normalize": None if items is None else items.normalize,
        # `layers: weighted`: the cached layers mixed by learned weights (layer_weights, after training)
        "layers": None if items is None else ("weighted" if items.weighted else "configured"),
        "scores_unseen_tracks": decl.scores_unseen_tracks and (items is None or items.mode != "id"),
        # val/test rank only these (a cold-item split's held-out tracks; docs/beyond.md), less
        # the tracks without a vector (docs/models.md, "Tracks without a vector")
        "n_candidates": data.n_items if data.candidates is None else len(data.candidates),
        **missing_vector_info(split, data, n_missing),
        **getattr(model, "run_info", {}),  # what a model type reports of itself (artist_mean)
    }
    if tuned:
        info["tuned_settings"] = tuned
    if isinstance(model, NeuralRecommender):
        device = pick_device(spec.get("device", "auto"))
        model.to(device)
        settings = TrainSettings.from_config(spec, k)
        result = fit(
            model, data, settings, seed, checkpoint=paths.checkpoint,
            fingerprint=fingerprint(spec, backend, seed, k, data, vectors),
        )
        model.eval()
        info.update(device=str(device), **_fit_info(result))
        history = result.history
    else:
        # No training: one "epoch 0" row with the validation metrics, so every run has a history.
        val = evaluate_part(model, data, data.parts["val"], k) if len(data.parts["val"].users) else {}
        history = [{"epoch": 0, "loss": None, **{f"val_{m}": v for m, v in val.items()}, "lr": None, "seconds": 0.0}]
        info.update(device="cpu", best_epoch=0, epochs_run=0)
    mixture = layer_weights(model, vectors)  # of the best epoch (fit restores it)
    if mixture is not None:
        info["layer_weights"] = mixture
        log.info("learned layer weights: %s", {name: round(w, 4) for name, w in mixture.items()})

    with torch.no_grad():
        factors = model.factors()
        for name, out in (("val", paths.recs_val), ("test", paths.recs_test)):
            part = data.parts[name]
            top = data.rank(factors, part.users, k)
            recs = recommendations_frame(top, data.user_ids, data.track_ids)
            write_parquet(recs, out)
            info[f"n_{name}_users"] = len(part.users)
            info[f"n_{name}_short_lists"] = int((top.lengths < k).sum())

    history_frame = pl.DataFrame(history, infer_schema_length=None).with_columns(
        pl.lit(n_missing).alias("n_items_without_embedding")
    )
    write_csv(history_frame, paths.history)
    _save_weights(paths.weights, model, kind, backend, seed, spec, data)
    info["seconds"] = time.perf_counter() - started
    write_text(json.dumps(info, indent=2, default=str) + "\n", paths.info)
    paths.checkpoint.unlink(missing_ok=True)
    log.info("done in %.1fs: %s", info["seconds"], {k_: v for k_, v in info.items() if k_.startswith(("best", "epochs"))})
    return info


def missing_vector_info(split: SplitData, data: SplitData, n_missing: int) -> dict[str, Any]:
    """What tracks without a vector cost this run (run.json; the report's runs table): the
    candidates dropped, the train rows the model did not see, the users left with no input
    (no list), and the val/test targets it cannot recommend (honest misses)."""
    pool = split.n_items if split.candidates is None else len(split.candidates)
    ranked = data.n_items if data.candidates is None else len(data.candidates)
    info: dict[str, Any] = {
        "n_items_without_embedding": n_missing,
        "missing_embedding_rule": "left out of model input and candidates; kept as val/test targets",
        "n_candidates_dropped_no_vector": pool - ranked,
        "n_train_rows_dropped_no_vector": split.n_train - data.n_train,
        "n_users_without_input": 0 if data.without_input is None else int(data.without_input.sum()),
    }
    ranked_items = np.ones(split.n_items, dtype=bool)
    if data.candidates is not None and n_missing:
        ranked_items[:] = False
        ranked_items[data.candidates] = True
    for name, part in split.parts.items():
        info[f"n_{name}_targets_without_vector"] = int((~ranked_items[part.relevant.indices]).sum()) if n_missing else 0
    return info


def _fit_info(result: FitResult) -> dict[str, Any]:
    return {
        "best_epoch": result.best_epoch,
        "best_val_metric": result.best_value,
        "epochs_run": len(result.history),
        "stopped_early": result.stopped_early,
        "resumed_from_epoch": result.resumed_from_epoch,
        "train_seconds": result.train_seconds,
    }


def _save_weights(
    path: str | os.PathLike[str], model: Recommender, kind: str, backend: str, seed: int, spec: dict[str, Any], data: SplitData
) -> None:
    """model.pt: only tensors, strings and numbers, so `torch.load(weights_only=True)` reads it."""
    payload = {
        "model": kind,
        "backend": backend,
        "seed": seed,
        "config": json.dumps(spec, sort_keys=True, default=str),
        "state": {key: value.detach().cpu() for key, value in model.saved_state().items()},
        "frozen": list(getattr(model, "frozen", ())),
        "user_ids": list(data.user_ids),
        "track_ids": list(data.track_ids),
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)

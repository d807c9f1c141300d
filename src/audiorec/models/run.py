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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from ..evaluation.ranking import recommendations_frame
from ..io import atomic_path, write_csv, write_parquet, write_text
from .base import NeuralRecommender, Recommender
from .bert4rec import Bert4Rec
from .data import SplitData, load_split
from .item_vectors import ItemVectors, load_item_vectors, random_item_vectors
from .knn import KNN
from .pop import Popularity
from .shallow import ShallowNet
from .training import FitResult, TrainSettings, evaluate_part, fit

log = logging.getLogger(__name__)

MODEL_TYPES = ("pop", "knn", "shallow", "bert4rec", "artist_mean")
NEURAL_TYPES = ("shallow", "bert4rec")
# Config keys that choose which runs exist, not how one run trains: kept out of a job's params.
RUN_SELECTION_KEYS = ("backends", "random_baseline")


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
    artists: str | None = None  # the dataset's id_information, for artist_mean (models/artist_mean.py)

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


def item_vectors_for(spec: dict[str, Any], backend: str, data: SplitData, seed: int, embeddings: str | None) -> ItemVectors | None:
    """The item vectors a run starts from: none (pop, or BERT4Rec's own random table),
    seeded random vectors (`random`), or the backend's embeddings aligned to the catalogue."""
    kind = spec["type"]
    if kind == "pop":
        return None
    if backend == "random":
        if kind == "bert4rec":
            return None
        return random_item_vectors(data.n_items, int(spec.get("random_dim", 64)), seed)
    if embeddings is None:
        raise ValueError(f"model type {kind} with backend {backend!r} needs an embeddings file")
    return load_item_vectors(embeddings, data.track_ids, float(spec.get("max_missing_share", 1.0)))


def build_model(spec: dict[str, Any], backend: str, data: SplitData, vectors: ItemVectors | None) -> Recommender:
    kind = spec["type"]
    learned_items = backend == "random"
    if kind == "pop":
        return Popularity(data, count=spec.get("count", "users"))
    if kind in ("knn", "artist_mean"):  # artist_mean: KNN on its artist-mean vectors
        assert vectors is not None
        return KNN(data, vectors.vectors)
    if kind == "shallow":
        assert vectors is not None
        return ShallowNet(
            data,
            vectors.vectors,
            freeze_items=bool(spec.get("freeze_items", True)) and not learned_items,
            margin=float(spec.get("margin", 0.2)),
            n_negatives=int(spec.get("n_negatives", 20)),
            batch_size=int(spec.get("batch_size", 10000)),
            tower=spec.get("tower", "shared"),
        )
    if kind == "bert4rec":
        return Bert4Rec(
            data,
            None if vectors is None else vectors.vectors,
            freeze_items=bool(spec.get("freeze_items", True)),
            hidden_size=spec.get("hidden_size"),
            random_dim=int(spec.get("random_dim", 64)),
            n_layers=int(spec.get("n_layers", 2)),
            n_heads=int(spec.get("n_heads", 2)),
            inner_size=int(spec.get("inner_size", 256)),
            dropout=float(spec.get("dropout", 0.1)),
            max_len=int(spec.get("max_len", 300)),
            mask_prob=float(spec.get("mask_prob", 0.2)),
            batch_size=int(spec.get("batch_size", 128)),
            output_bias=bool(spec.get("output_bias", False)),
            precision=resolve_precision(spec.get("precision", "fp32"), pick_device(spec.get("device", "auto"))),
        )
    raise ValueError(f"unknown model type {kind!r}; choose one of {MODEL_TYPES}")


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


def train_run(spec: dict[str, Any], backend: str, seed: int, k: int, paths: RunPaths) -> dict[str, Any]:
    """Train (or fit) one model on the split and write every output of its run folder."""
    started = time.perf_counter()
    spec = {key: value for key, value in spec.items() if key not in RUN_SELECTION_KEYS}
    kind = spec["type"]
    data = load_split(paths.train, paths.val, paths.test, paths.catalogue)
    log.info(
        "%s/%s seed %d: %d users, %d tracks, %d train rows, %d val users, %d test users",
        kind, backend, seed, data.n_users, data.n_items, data.n_train,
        len(data.parts["val"].users), len(data.parts["test"].users),
    )
    vectors = item_vectors_for(spec, backend, data, seed, paths.embeddings)
    artist_info: dict[str, Any] = {}
    if kind == "artist_mean":
        from .artist_mean import load_artist_mean_vectors

        vectors, artist_info = load_artist_mean_vectors(vectors, data, paths.artists)
    n_missing = 0 if vectors is None else vectors.n_missing
    torch.manual_seed(seed)
    model = build_model(spec, backend, data, vectors)
    info: dict[str, Any] = {
        "model": kind,
        "backend": backend,
        "seed": seed,
        "k": k,
        "n_users": data.n_users,
        "n_items": data.n_items,
        "n_train": data.n_train,
        "n_items_without_embedding": n_missing,
        "missing_embedding_fallback": "mean vector of the tracks that have one",
        "vector_dim": None if vectors is None else int(vectors.vectors.shape[1]),
        # val/test rank only these (a cold-item split's held-out tracks; docs/beyond.md)
        "n_candidates": data.n_items if data.candidates is None else len(data.candidates),
        **artist_info,
    }
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

    with torch.no_grad():
        factors = model.factors()
        for name, out in (("val", paths.recs_val), ("test", paths.recs_test)):
            part = data.parts[name]
            top = factors.rank(part.users, data.train, k, candidates=data.candidates)
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

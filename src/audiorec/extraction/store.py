"""The embedding cache: one HDF5 file per dataset and backend instance (ARCHITECTURE §3).

Layout:
- `/track_ids`   UTF-8 strings [N], the row order of everything below;
- `/embeddings`  float32 [N, D], the track vector the recommenders use;
- `/layers`      optional [N, L, Dmax], the time-mean of every cached hidden layer (narrower
                 layers zero-padded on the right). float16 to halve the size of the
                 layer sweep's input; float32 where a value would overflow float16 (the
                 dtype says which). Written only when a backend caches more than one layer:
                 for one layer `/embeddings` already is it (`read_layers` falls back to it);
- `/failures/{track_id,path,reason,stage}`  optional, the tracks that have no row;
- `/silent_track_ids`  optional, tracks embedded from all-zero audio;
- root attributes: provenance (backend type, weights id/revision, sample rate, layer,
  `layer_names`, `layer_dims`, pooling, library version, the backend spec as JSON).

Every write goes through a temporary sibling renamed into place, so a killed job never
leaves a file that looks complete.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..io import atomic_path
from .records import FAILURE_COLUMNS, Failure

log = logging.getLogger(__name__)

STRING_DTYPE = h5py.string_dtype(encoding="utf-8")
FLOAT16_MAX = float(np.finfo(np.float16).max)


@dataclass(frozen=True)
class LayerInfo:
    names: list[str]
    dims: list[int]


def _strings(values: Sequence[str]) -> np.ndarray:
    return np.asarray([str(v) for v in values], dtype=object)


def _decode(values: np.ndarray) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values]


def _attr_value(value: Any) -> Any:
    """HDF5 attributes take numbers, strings and arrays of them; everything else as JSON."""
    if value is None:
        return "null"
    if isinstance(value, (bool, int, float, str, np.integer, np.floating)):
        return value
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, str) for v in value):
            return np.asarray(value, dtype=STRING_DTYPE)
        if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in value):
            return np.asarray(value)
    return json.dumps(value, sort_keys=True, default=str)


def layers_dtype(max_abs: float) -> np.dtype:
    """float16 unless some value would overflow it."""
    return np.dtype(np.float16) if max_abs < FLOAT16_MAX else np.dtype(np.float32)


class EmbeddingWriter:
    """Streaming writer for files too large to hold in memory (gathering shards).

    Use as a context manager: rows are appended block by block; the file appears at
    `path` only when exactly `n` rows were written and the block exits without error.
    `dim=None` writes no `/embeddings` (the per-shard files of the engine hold layers only).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        n: int,
        dim: int | None,
        layer_shape: tuple[int, int] | None = None,
        layer_dtype: Any = np.float16,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.n, self.dim, self.layer_shape = n, dim, layer_shape
        self.layer_dtype = np.dtype(layer_dtype)
        self.attrs = dict(attrs or {})
        self.failures: list[Failure] = []
        self.silent: list[str] = []
        self._row = 0

    def __enter__(self) -> EmbeddingWriter:
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        try:
            self._f = h5py.File(tmp, "w")
            self._ids = self._f.create_dataset("track_ids", shape=(self.n,), dtype=STRING_DTYPE)
            self._emb = None
            if self.dim is not None:
                self._emb = self._f.create_dataset("embeddings", shape=(self.n, self.dim), dtype=np.float32)
            self._lay = None
            if self.layer_shape is not None:
                self._lay = self._f.create_dataset("layers", shape=(self.n, *self.layer_shape), dtype=self.layer_dtype)
        except BaseException as exc:
            self._atomic.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def append(self, track_ids: Sequence[str], embeddings: np.ndarray | None, layers: np.ndarray | None = None) -> None:
        k = len(track_ids)
        if self._row + k > self.n:
            raise ValueError(f"more than the {self.n} announced rows (writing {self.path})")
        sl = slice(self._row, self._row + k)
        if self._emb is not None:
            if embeddings is None:
                raise ValueError(f"this file has /embeddings; pass them for every block (writing {self.path})")
            emb = np.asarray(embeddings, dtype=np.float32)
            _check_rows(track_ids, emb, self.path)
            if emb.shape != (k, self.dim):
                raise ValueError(f"embeddings block must be [{k}, {self.dim}], got {emb.shape} (writing {self.path})")
            self._emb[sl] = emb
        self._ids[sl] = _strings(track_ids)
        if self._lay is not None:
            if layers is None:
                raise ValueError(f"this file has /layers; pass them for every block (writing {self.path})")
            lay = np.asarray(layers)
            if lay.shape != (k, *self.layer_shape):  # type: ignore[misc]
                raise ValueError(f"layers block must be [{k}, {self.layer_shape}], got {lay.shape}")
            cast = lay.astype(self.layer_dtype)
            if not np.isfinite(cast).all():
                raise ValueError(
                    f"layer means do not fit {self.layer_dtype} (writing {self.path}); values up to "
                    f"{np.abs(lay).max():.3g}"
                )
            self._lay[sl] = cast
        self._row += k

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                if self._row != self.n:
                    raise ValueError(f"wrote {self._row} of the {self.n} announced rows (writing {self.path})")
                _write_extras(self._f, self.failures, self.silent, self.attrs)
            self._f.close()
        except BaseException as err:
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        self._atomic.__exit__(exc_type, exc, tb)


def _check_rows(track_ids: Sequence[str], emb: np.ndarray, path: Any) -> None:
    if emb.ndim != 2 or emb.shape[0] != len(track_ids):
        raise ValueError(f"embeddings must be [N={len(track_ids)}, D], got {emb.shape}")
    if not np.isfinite(emb).all():
        bad = [track_ids[i] for i in np.flatnonzero(~np.isfinite(emb).all(axis=1))[:5]]
        raise ValueError(f"non-finite embeddings for tracks {bad} (writing {path})")


def _write_extras(f: h5py.File, failures: Sequence[Failure], silent: Sequence[str], attrs: Mapping[str, Any]) -> None:
    if failures:
        group = f.create_group("failures")
        for col in FAILURE_COLUMNS:
            group.create_dataset(col, data=_strings([getattr(x, col) for x in failures]), dtype=STRING_DTYPE)
    if silent:
        f.create_dataset("silent_track_ids", data=_strings(silent), dtype=STRING_DTYPE)
    for key, value in attrs.items():
        f.attrs[key] = _attr_value(value)


def write_embeddings(
    path: str | os.PathLike[str],
    track_ids: Sequence[str],
    embeddings: np.ndarray,
    layers: np.ndarray | None = None,
    attrs: Mapping[str, Any] | None = None,
    failures: Sequence[Failure] = (),
    silent: Sequence[str] = (),
    layer_dtype: Any = None,
) -> None:
    """Write the cache atomically; refuses non-finite vectors rather than storing NaN rows.

    `layers` are stored as `layer_dtype` (default: float16, or float32 where float16 would
    overflow)."""
    emb = np.asarray(embeddings, dtype=np.float32)
    _check_rows(track_ids, emb, path)
    lay = None
    if layers is not None:
        lay = np.asarray(layers)
        if lay.ndim != 3 or lay.shape[0] != len(track_ids):
            raise ValueError(f"layers must be [N={len(track_ids)}, L, D], got {lay.shape}")
        if layer_dtype is None:
            layer_dtype = layers_dtype(float(np.abs(lay).max()) if lay.size else 0.0)
            if layer_dtype == np.float32:
                log.warning(
                    "layer means up to %.3g overflow float16; %s stores /layers as float32", np.abs(lay).max(), path
                )
    with EmbeddingWriter(
        path,
        len(track_ids),
        emb.shape[1],
        None if lay is None else (lay.shape[1], lay.shape[2]),
        layer_dtype if layer_dtype is not None else np.float16,
        attrs,
    ) as w:
        w.failures, w.silent = list(failures), list(silent)
        if len(track_ids):
            w.append(track_ids, emb, lay)


def read_embeddings(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
    """Track ids and their float32 track vectors [N, D], in file order."""
    with h5py.File(path, "r") as f:
        ids = _decode(f["track_ids"][()])
        emb = np.asarray(f["embeddings"][()], dtype=np.float32)
    return ids, emb


def read_track_ids(path: str | os.PathLike[str]) -> list[str]:
    """Track ids in file order (the rows of /embeddings and /layers), without reading any vector."""
    with h5py.File(path, "r") as f:
        return _decode(f["track_ids"][()])


def read_attrs(path: str | os.PathLike[str]) -> dict[str, Any]:
    with h5py.File(path, "r") as f:
        out = {}
        for k, v in f.attrs.items():
            if isinstance(v, np.ndarray):
                v = _decode(v) if v.dtype.kind in "OSU" else v.tolist()
            elif isinstance(v, bytes):
                v = v.decode("utf-8")
            elif isinstance(v, np.generic):
                v = v.item()
            out[k] = v
        return out


def read_layer_info(path: str | os.PathLike[str]) -> LayerInfo:
    """Names and true widths of the cached layers (one layer, the embedding, if not recorded)."""
    attrs = read_attrs(path)
    with h5py.File(path, "r") as f:
        width = int(f["embeddings"].shape[1] if "embeddings" in f else f["layers"].shape[2])
    names = [str(n) for n in attrs.get("layer_names", [])] or ["embedding"]
    dims = [int(d) for d in attrs.get("layer_dims", [])] or [width]
    return LayerInfo(names, dims)


def read_layers(path: str | os.PathLike[str], layer: int | str | None = None) -> tuple[list[str], np.ndarray]:
    """Track ids and the cached layer means as float32: all [N, L, Dmax] (`layer=None`), or
    one layer [N, D_layer] by index or name, trimmed to its true width.

    A file without `/layers` (a one-layer backend) serves `/embeddings` as its only layer."""
    info = read_layer_info(path)
    with h5py.File(path, "r") as f:
        ids = _decode(f["track_ids"][()])
        if "layers" not in f:
            emb = np.asarray(f["embeddings"][()], dtype=np.float32)
            if layer is None:
                return ids, emb[:, None, :]
            if layer in (0, -1, info.names[0]):
                return ids, emb
            raise KeyError(f"{path} caches only its embedding ({info.names[0]}); no layer {layer!r}")
        data = f["layers"]
        if layer is None:
            return ids, np.asarray(data[()], dtype=np.float32)
        if isinstance(layer, str):
            if layer not in info.names:
                raise KeyError(f"{path} has no layer {layer!r}; layers: {info.names}")
            index = info.names.index(layer)
        else:
            index = int(layer) % data.shape[1]
        dim = info.dims[index] if index < len(info.dims) else data.shape[2]
        return ids, np.asarray(data[:, index, :dim], dtype=np.float32)


def read_failures(path: str | os.PathLike[str]) -> list[Failure]:
    with h5py.File(path, "r") as f:
        if "failures" not in f:
            return []
        cols = {c: _decode(f["failures"][c][()]) for c in FAILURE_COLUMNS}
    return [Failure(*row) for row in zip(*(cols[c] for c in FAILURE_COLUMNS), strict=True)]


def read_silent(path: str | os.PathLike[str]) -> list[str]:
    with h5py.File(path, "r") as f:
        return _decode(f["silent_track_ids"][()]) if "silent_track_ids" in f else []

"""The embedding cache: one HDF5 file per dataset and backend instance (ARCHITECTURE §3).

Layout: `/track_ids` (UTF-8 strings [N]), `/embeddings` (float32 [N, D], the track vector
the recommenders use), optional `/layers` (float16 [N, L, Dmax], the time-mean of every
cached hidden layer, narrower layers zero-padded; attribute `layer_dims` gives widths),
and provenance attributes on the root.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import h5py
import numpy as np

from ..io import atomic_path

STRING_DTYPE = h5py.string_dtype(encoding="utf-8")


def write_embeddings(
    path: str | os.PathLike[str],
    track_ids: Sequence[str],
    embeddings: np.ndarray,
    layers: np.ndarray | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> None:
    """Write the cache atomically; refuses non-finite vectors rather than storing NaN rows."""
    emb = np.asarray(embeddings, dtype=np.float32)
    if emb.ndim != 2 or emb.shape[0] != len(track_ids):
        raise ValueError(f"embeddings must be [N={len(track_ids)}, D], got {emb.shape}")
    if not np.isfinite(emb).all():
        bad = [track_ids[i] for i in np.flatnonzero(~np.isfinite(emb).all(axis=1))[:5]]
        raise ValueError(f"non-finite embeddings for tracks {bad} (writing {path})")
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("track_ids", data=np.asarray(list(track_ids), dtype=object), dtype=STRING_DTYPE)
        f.create_dataset("embeddings", data=emb)
        if layers is not None:
            lay = np.asarray(layers)
            if lay.ndim != 3 or lay.shape[0] != len(track_ids):
                raise ValueError(f"layers must be [N={len(track_ids)}, L, D], got {lay.shape}")
            lay16 = lay.astype(np.float16)
            if not np.isfinite(lay16).all():
                raise ValueError(f"layer means overflow float16 (writing {path}); values up to {np.abs(lay).max():.3g}")
            f.create_dataset("layers", data=lay16)
        for key, value in (attrs or {}).items():
            f.attrs[key] = value


def read_embeddings(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
    """Track ids and their float32 track vectors [N, D], in file order."""
    with h5py.File(path, "r") as f:
        ids = [s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in f["track_ids"][()]]
        emb = np.asarray(f["embeddings"][()], dtype=np.float32)
    return ids, emb


def read_attrs(path: str | os.PathLike[str]) -> dict[str, Any]:
    with h5py.File(path, "r") as f:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f.attrs.items()}

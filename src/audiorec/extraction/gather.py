"""Gathering a backend's shard files into its one embedding cache and failures table.

The gather step is where the configured `layer` becomes the track vector (`/embeddings`,
float32, selected from the shards' float32 layer means) and where the backend's
`max_fail_share` is enforced over the whole dataset. It streams shard by shard in
blocks, so a 24-layer model over 100k tracks never has to fit in memory.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ..backends.base import Backend
from ..io import write_csv
from .engine import TooManyFailures
from .records import FAILURE_COLUMNS, Failure
from .shards import allowed_failures
from .store import EmbeddingWriter, _decode, layers_dtype, read_failures, read_silent

log = logging.getLogger(__name__)

BLOCK_ROWS = 4096


@dataclass(frozen=True)
class GatherSummary:
    n_tracks: int
    n_embedded: int
    failures: list[Failure]
    n_silent: int


def failures_frame(failures: Sequence[Failure]) -> Any:
    import polars as pl

    rows = [f.as_row() for f in sorted(failures, key=lambda f: f.track_id)]
    return pl.DataFrame(rows, schema={c: pl.String for c in FAILURE_COLUMNS})


def write_failures_csv(failures: Sequence[Failure], path: str | Path) -> None:
    write_csv(failures_frame(failures), path)


def gather(
    backend: Backend,
    shard_paths: Sequence[str | Path],
    track_ids: Sequence[str],
    out_h5: str | Path,
    out_failures: str | Path,
    max_fail_share: float,
    attrs: Mapping[str, Any] | None = None,
    rejected_failures: str | Path | None = None,
) -> GatherSummary:
    """Concatenate shards (in order) into `out_h5` and `out_failures`.

    `track_ids` is the whole track index: every id must be embedded or failed, exactly
    once. Above `max_fail_share` nothing is written except the failures table at
    `rejected_failures`, which the raised TooManyFailures names."""
    embedded_ids: list[str] = []
    failures: list[Failure] = []
    silent: list[str] = []
    max_abs = 0.0
    for path in shard_paths:
        with h5py.File(path, "r") as f:
            embedded_ids += _decode(f["track_ids"][()])
            max_abs = max(max_abs, float(f.attrs.get("layers_max_abs", 0.0)))
        failures += read_failures(path)
        silent += read_silent(path)
    _check_complete(embedded_ids, failures, track_ids, shard_paths)
    n_total = len(track_ids)
    limit = allowed_failures(max_fail_share, n_total)
    if len(failures) > limit:
        where = ""
        if rejected_failures is not None:
            write_failures_csv(failures, rejected_failures)
            where = f" They are listed in {rejected_failures}."
        raise TooManyFailures(
            f"{len(failures)} of {n_total} tracks ({len(failures) / max(n_total, 1):.2%}) could not be embedded, "
            f"more than max_fail_share={max_fail_share} allows ({limit}).{where} Fix or remove those files, or raise "
            "the backend's max_fail_share in config.yaml to accept them.",
            failures,
        )
    n_layers, width = len(backend.layer_names), max(backend.layer_dims)
    keep_layers = n_layers > 1
    dtype = layers_dtype(max_abs)
    if keep_layers and dtype == np.float32:
        log.warning("layer means up to %.3g overflow float16; /layers is stored as float32", max_abs)
    meta = {**(attrs or {}), "n_tracks": n_total, "n_failures": len(failures), "n_silent": len(silent)}
    with EmbeddingWriter(
        out_h5, len(embedded_ids), backend.embedding_dim, (n_layers, width) if keep_layers else None, dtype, meta
    ) as writer:
        writer.failures = sorted(failures, key=lambda f: f.track_id)
        writer.silent = silent
        for path in shard_paths:
            with h5py.File(path, "r") as f:
                n = f["track_ids"].shape[0]
                for start in range(0, n, BLOCK_ROWS):
                    stop = min(start + BLOCK_ROWS, n)
                    ids = _decode(f["track_ids"][start:stop])
                    layers = np.asarray(f["layers"][start:stop], dtype=np.float32)
                    writer.append(ids, backend.select(layers), layers if keep_layers else None)
    write_failures_csv(failures, out_failures)
    return GatherSummary(n_total, len(embedded_ids), failures, len(silent))


def _check_complete(
    embedded: Sequence[str], failures: Sequence[Failure], track_ids: Sequence[str], shard_paths: Sequence[Any]
) -> None:
    seen = list(embedded) + [f.track_id for f in failures]
    if len(seen) != len(set(seen)):
        dup = sorted(t for t, c in Counter(seen).items() if c > 1)[:5]
        raise ValueError(f"tracks {dup} appear in more than one shard or both embedded and failed ({shard_paths})")
    missing = set(track_ids) - set(seen)
    extra = set(seen) - set(track_ids)
    if missing or extra:
        raise ValueError(
            f"the shards do not cover the track index: {len(missing)} tracks missing (e.g. {sorted(missing)[:3]}), "
            f"{len(extra)} unknown (e.g. {sorted(extra)[:3]}). The shards are stale; delete them and re-run."
        )

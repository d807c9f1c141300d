"""One extraction job: a deterministic slice of the track index, embedded in resumable chunks.

A backend with `shards: n` runs as n jobs (cluster nodes in parallel), each over a
contiguous block of the tracks sorted by id. A job works through its block in chunks of
`chunk_size` tracks; each finished chunk is written atomically to a side folder keyed by a
digest of the backend spec, so a job killed after hours resumes where it stopped, and
produces bit-identical results (batches never span chunks). The shard file itself is
written atomically at the end, and the side folder removed; until then Snakemake sees no
output and reruns (resumes) the job.

Shard files hold every cached layer as float32 (`/layers`), not the track vector: the gather
step selects the configured layer, so choosing another layer never re-runs the model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .. import __version__
from ..io import atomic_path
from .engine import Extractor, TooManyFailures, describe_failures
from .records import EmbedResult, Failure, TrackRef
from .store import (
    STRING_DTYPE,
    EmbeddingWriter,
    _decode,
    _strings,
    _write_extras,
    read_failures,
    read_silent,
)

log = logging.getLogger(__name__)

#: bump when the chunk or shard file layout or the engine's numerics change
FORMAT_VERSION = 1
#: backend settings that do not change a shard's content (resuming survives changing them;
#: `layer` is applied by the gather step)
NON_CONTENT_KEYS: tuple[str, ...] = ("num_workers", "max_fail_share", "layer")


def shard_bounds(n_tracks: int, shard: int, nshards: int) -> tuple[int, int]:
    """[start, stop) of shard `shard` of `nshards` over `n_tracks` sorted tracks: contiguous,
    sizes differing by at most one (numpy.array_split's partition)."""
    if not 0 <= shard < nshards:
        raise ValueError(f"shard {shard} is not in 0..{nshards - 1}")
    base, extra = divmod(n_tracks, nshards)
    start = shard * base + min(shard, extra)
    return start, start + base + (1 if shard < extra else 0)


def content_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a backend spec that determines the shards' content."""
    return {k: v for k, v in spec.items() if k not in NON_CONTENT_KEYS}


def spec_digest(spec: Mapping[str, Any]) -> str:
    payload = json.dumps(
        {"spec": content_spec(spec), "format": FORMAT_VERSION, "audiorec": __version__}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def refs_digest(refs: Sequence[TrackRef]) -> str:
    h = hashlib.sha256()
    for r in refs:
        h.update(f"{r.track_id}\t{r.path}\t{r.frames}\n".encode())
    return h.hexdigest()[:16]


def resume_dir(shard_path: str | Path, spec: Mapping[str, Any]) -> Path:
    """Side folder of a shard's finished chunks: beside the shard file, keyed by the spec."""
    p = Path(shard_path)
    return p.parent / ".resume" / spec_digest(spec) / p.stem


def shard_inputs(tracks: Any, shard: int, nshards: int, needs_audio: bool) -> tuple[list[TrackRef], list[Failure]]:
    """This shard's tracks to embed, and those the probe already found unusable.

    `tracks` is the track index (a polars frame of results/{dataset}/tracks.parquet).
    Backends that need no audio take every track, whatever the state of its audio file."""
    tracks = tracks.sort("track_id")
    start, stop = shard_bounds(tracks.height, shard, nshards)
    refs, failures = [], []
    for row in tracks.slice(start, stop - start).iter_rows(named=True):
        path = row["path"] or ""
        if needs_audio and row["status"] != "ok":
            failures.append(Failure(row["track_id"], path, row["reason"] or row["status"], "probe"))
        else:
            frames = row.get("frames")
            refs.append(TrackRef(row["track_id"], path, int(frames) if frames is not None else None))
    return refs, failures


@dataclass
class ShardSummary:
    n_tracks: int
    n_embedded: int
    failures: list[Failure] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)
    reused_chunks: int = 0
    computed_chunks: int = 0


def _chunk_path(folder: Path, index: int) -> Path:
    return folder / f"chunk{index:06d}.h5"


def _write_chunk(path: Path, digest: str, result: EmbedResult) -> None:
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("track_ids", data=_strings(result.track_ids), dtype=STRING_DTYPE)
        f.create_dataset("layers", data=result.layers.astype(np.float32))
        _write_extras(f, result.failures, result.silent, {"input_digest": digest})


def _read_chunk(path: Path, digest: str) -> EmbedResult | None:
    """A finished chunk for exactly these inputs, or None (absent, unreadable, or stale)."""
    if not path.exists():
        return None
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("input_digest") != digest:
                return None
            ids = _decode(f["track_ids"][()])
            layers = np.asarray(f["layers"][()], dtype=np.float32)
        return EmbedResult(ids, layers, read_failures(path), read_silent(path))
    except (OSError, KeyError):
        log.warning("ignoring unreadable resume chunk %s", path)
        return None


def run_shard(
    extractor: Extractor,
    refs: Sequence[TrackRef],
    probe_failures: Sequence[Failure],
    out_path: str | Path,
    resume: str | Path,
    chunk_size: int = 256,
    attrs: Mapping[str, Any] | None = None,
    progress: Callable[[int], Any] | None = None,
) -> ShardSummary:
    """Embed `refs` chunk by chunk (reusing finished chunks in `resume`) and write the shard.

    `progress(n)` builds a progress bar for n tracks (runtime.progress); the extractor's
    `max_failures` limit counts the probe failures and those of reused chunks."""
    resume = Path(resume)
    resume.mkdir(parents=True, exist_ok=True)
    if not extractor.backend.needs_audio:
        chunk_size = max(1, len(refs))  # reading a table: one pass, nothing worth resuming
    chunks = [list(refs[i : i + chunk_size]) for i in range(0, len(refs), chunk_size)]
    summary = ShardSummary(n_tracks=len(refs) + len(probe_failures), n_embedded=0, failures=list(probe_failures))
    bar = progress(len(refs)) if progress else None
    extractor.on_track = (lambda: bar.update(1)) if bar is not None else None
    extractor.prior_failures = len(probe_failures)
    shapes: list[tuple[int, ...]] = []
    max_abs = 0.0
    try:
        extractor.check_failures()
        for index, chunk in enumerate(chunks):
            path, digest = _chunk_path(resume, index), refs_digest(chunk)
            result = _read_chunk(path, digest)
            if result is not None:
                summary.reused_chunks += 1
                extractor.prior_failures += len(result.failures)
                extractor.current_failures = list(result.failures)
                extractor.check_failures()
                if bar is not None:
                    bar.update(len(chunk))
            else:
                result = extractor.run(chunk)
                _write_chunk(path, digest, result)
                summary.computed_chunks += 1
            summary.failures += result.failures
            summary.silent += result.silent
            summary.n_embedded += len(result.track_ids)
            if len(result.track_ids):
                shapes.append(result.layers.shape[1:])
                max_abs = max(max_abs, float(np.abs(result.layers).max()))
    except TooManyFailures as exc:
        known = {f.track_id for f in summary.failures}
        exc.failures = summary.failures + [f for f in exc.failures if f.track_id not in known]
        raise
    finally:
        if bar is not None:
            bar.close()
    if summary.reused_chunks:
        log.info("resumed: reused %d finished chunks, computed %d", summary.reused_chunks, summary.computed_chunks)
    backend = extractor.backend
    layer_shape = (len(backend.layer_names), max(backend.layer_dims))
    if any(s != layer_shape for s in shapes):
        raise RuntimeError(f"resume chunks in {resume} have layer shapes {set(shapes)}, expected {layer_shape}")
    meta = {**(attrs or {}), "layers_max_abs": max_abs, "n_tracks": summary.n_tracks}
    with EmbeddingWriter(out_path, summary.n_embedded, None, layer_shape, np.float32, meta) as writer:
        writer.failures, writer.silent = summary.failures, summary.silent
        for index, chunk in enumerate(chunks):
            result = _read_chunk(_chunk_path(resume, index), refs_digest(chunk))
            if result is None:
                raise RuntimeError(f"resume chunk {index} vanished from {resume} while writing {out_path}")
            if len(result.track_ids):
                writer.append(result.track_ids, None, result.layers)
    shutil.rmtree(resume, ignore_errors=True)
    for parent in (resume.parent, resume.parent.parent):
        try:
            parent.rmdir()  # only when empty: other shards may still be resuming
        except OSError:
            break
    if summary.failures:
        log.warning(
            "%d of %d tracks failed: %s", len(summary.failures), summary.n_tracks, describe_failures(summary.failures)
        )
    if summary.silent:
        log.warning("%d tracks are digital silence (embedded): %s", len(summary.silent), ", ".join(summary.silent[:10]))
    return summary


def allowed_failures(max_fail_share: float, n_total: int) -> int:
    """How many of `n_total` tracks may fail before the backend's job fails."""
    return math.floor(max_fail_share * n_total + 1e-9)


__all__ = [
    "FORMAT_VERSION",
    "ShardSummary",
    "TooManyFailures",
    "allowed_failures",
    "content_spec",
    "resume_dir",
    "run_shard",
    "shard_bounds",
    "shard_inputs",
    "spec_digest",
]

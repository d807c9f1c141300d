"""What the workflow's extraction rules run (scripts/tracks.py, embed_shard.py, embed_gather.py,
fetch_weights.py call these with their Snakemake inputs, and tests call them directly)."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..backends import build_backend
from ..io import write_parquet
from ..runtime import progress
from .device import plan_run
from .engine import Extractor, TooManyFailures
from .gather import GatherSummary, gather, write_failures_csv
from .shards import (
    ShardSummary,
    allowed_failures,
    content_spec,
    resume_dir,
    run_shard,
    shard_inputs,
)
from .tracks import build_track_index, summarize
from .weights import fetch_weights, weights_dir_for

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    "batch_size": 8,
    "max_fail_share": 0.01,
    "device": "auto",
    "precision": "auto",
    "num_workers": None,
    "chunk_size": 256,
}


def setting(spec: Mapping[str, Any], key: str) -> Any:
    value = spec.get(key)
    return DEFAULTS[key] if value is None else value


def capture_native_stderr() -> None:
    """Send file descriptor 2 to wherever sys.stderr now points (the rule's log).

    Native decoders (mpg123 inside libsndfile) print warnings such as "Illegal
    Audio-MPEG-Header" straight to fd 2; on a 100k-file dataset they would flood the
    terminal instead of the job's log."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return
    if fd != 2:
        os.dup2(fd, 2)


def make_tracks(audio_dir: str | Path, log_path: str | Path | None, out: str | Path, threads: int = 1) -> Any:
    """Rule `tracks`: index and probe every clip, write the parquet."""
    index = build_track_index(audio_dir, log_path, workers=threads, progress=_bar("probing"))
    write_parquet(index, out)
    log.info("track index: %s", summarize(index))
    return index


def _bar(desc: str, unit: str = "track") -> Any:
    return lambda total: progress(None, total=total, desc=desc, unit=unit)  # type: ignore[arg-type]


def _read_tracks(path: str | Path) -> Any:
    import polars as pl

    return pl.read_parquet(path)


def file_attrs(backend: Any, spec: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    attrs = dict(backend.attributes())
    attrs.update(
        {
            "backend_spec": json.dumps(dict(spec), sort_keys=True, default=str),
            "audiorec_version": __version__,
        }
    )
    attrs.update(extra or {})
    return attrs


def embed_shard(
    spec: Mapping[str, Any],
    tracks_path: str | Path,
    out: str | Path,
    shard: int,
    nshards: int,
    threads: int = 1,
    dataset_dir: str | Path | None = None,
    weights_root: str | Path | None = None,
    failures_report: str | Path | None = None,
    runtime: Mapping[str, Any] | None = None,
) -> ShardSummary:
    """Rule `embed_shard`: embed shard `shard` of `nshards` of the track index into `out`.

    `runtime` holds the settings that do not change the result (num_workers,
    max_fail_share): they are read from the config by the script, not passed as params, so
    changing them neither re-runs finished shards nor invalidates their resume chunks."""
    full = {**dict(spec), **dict(runtime or {})}
    backend = build_backend(full)
    if weights_root is not None and backend.has_weights:
        backend.weights_dir = weights_dir_for(weights_root, backend)
    tracks = _read_tracks(tracks_path)
    refs, probe_failures = shard_inputs(tracks, shard, nshards, backend.needs_audio)
    max_failures = allowed_failures(float(setting(full, "max_fail_share")), tracks.height)
    plan = plan_run(threads, setting(full, "device"), setting(full, "precision"), full.get("num_workers"))
    log.info(
        "shard %d of %d: %d tracks to embed, %d already failed at the probe; at most %d failures allowed in all",
        shard,
        nshards,
        len(refs),
        len(probe_failures),
        max_failures,
    )
    extractor = Extractor(
        backend,
        plan,
        batch_size=int(setting(full, "batch_size")),
        dataset_dir=Path(dataset_dir) if dataset_dir is not None else None,
        max_failures=max_failures,
    )
    attrs = file_attrs(backend, content_spec(full), {"shard": shard, "nshards": nshards})
    try:
        with extractor:
            return run_shard(
                extractor,
                refs,
                probe_failures,
                out,
                resume_dir(out, full),
                chunk_size=int(setting(full, "chunk_size")),
                attrs=attrs,
                progress=_bar(f"{backend.type_name} shard {shard}/{nshards}"),
            )
    except TooManyFailures as exc:
        where = ""
        if failures_report is not None:
            write_failures_csv(exc.failures, failures_report)
            where = f" The failures so far are listed in {failures_report}."
        raise TooManyFailures(
            f"shard {shard} of {nshards}: {exc}.{where} Finished chunks are kept and reused when the job is "
            "re-run: fix or remove the broken files, or raise the backend's max_fail_share in config.yaml.",
            exc.failures,
        ) from None


def embed_gather(
    spec: Mapping[str, Any],
    shard_paths: Sequence[str | Path],
    tracks_path: str | Path,
    out_h5: str | Path,
    out_failures: str | Path,
    failures_report: str | Path | None = None,
    runtime: Mapping[str, Any] | None = None,
    extra_attrs: Mapping[str, Any] | None = None,
) -> GatherSummary:
    """Rule `embed`: gather the shards into `{backend}.h5` and `{backend}.failures.csv`."""
    full = {**dict(spec), **dict(runtime or {})}
    backend = build_backend(full)
    tracks = _read_tracks(tracks_path)
    summary = gather(
        backend,
        list(shard_paths),
        tracks["track_id"].to_list(),
        out_h5,
        out_failures,
        float(setting(full, "max_fail_share")),
        file_attrs(backend, full, extra_attrs),
        rejected_failures=failures_report,
    )
    log.info(
        "%s: %d of %d tracks embedded, %d failed (%s), %d silent",
        out_h5,
        summary.n_embedded,
        summary.n_tracks,
        len(summary.failures),
        out_failures,
        summary.n_silent,
    )
    return summary


def prefetch_weights(spec: Mapping[str, Any], root: str | Path, manifest: str | Path) -> dict[str, Any]:
    """Rule `fetch_weights`: download a backend's weights into the cache and write the manifest."""
    backend = build_backend(spec)
    return fetch_weights(backend, root, manifest)

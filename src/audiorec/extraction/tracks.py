"""The audio index of a dataset (`results/{dataset}/tracks.parquet`), shared by every backend.

One row per track that the dataset knows of, from its `audios/` folder or its listening
log, so that a track whose audio is missing or broken is recorded rather than silently
absent: `track_id`, `path` (null when there is no file), `format`, `duration` (s),
`sample_rate`, `channels`, `frames` (as the file header says), `status` (ok | missing |
empty | unreadable) and `reason`. Only headers are read (soundfile.info, in parallel), so
indexing Music4All's 109k clips takes minutes, not hours; files that turn out to be cut
short are caught when a backend decodes them.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from ..audio.decode import AUDIO_EXTENSIONS, ProbeResult, probe

log = logging.getLogger(__name__)

TRACK_COLUMNS: dict[str, str] = {
    "track_id": "String",
    "path": "String",
    "format": "String",
    "duration": "Float64",
    "sample_rate": "Int64",
    "channels": "Int64",
    "frames": "Int64",
    "status": "String",
    "reason": "String",
}


def list_audio(audio_dir: str | Path) -> dict[str, str]:
    """{track_id: path} of the clips directly under `audio_dir` (`{track_id}.{mp3,flac,wav,ogg}`).

    A track with several files keeps the first of mp3, flac, wav, ogg (logged)."""
    folder = Path(audio_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"no audio folder at {folder}; put the clips there as {{track_id}}.mp3")
    found: dict[str, list[str]] = {}
    ignored = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            stem, ext = os.path.splitext(entry.name)
            if ext.lower() not in AUDIO_EXTENSIONS or not stem:
                ignored += 1
                continue
            found.setdefault(stem, []).append(os.path.join(str(folder), entry.name))
    if ignored:
        log.info("ignored %d entries in %s that are not .mp3/.flac/.wav/.ogg clips", ignored, folder)
    rank = {ext: i for i, ext in enumerate(AUDIO_EXTENSIONS)}
    chosen = {}
    for tid, paths in found.items():
        paths.sort(key=lambda p: (rank[os.path.splitext(p)[1].lower()], p))
        if len(paths) > 1:
            log.warning("track %s has several files %s; using %s", tid, paths, paths[0])
        chosen[tid] = paths[0]
    return chosen


def log_track_ids(log_path: str | Path) -> set[str]:
    """Distinct `track_id`s of a listening log (.tsv or .tsv.bz2), read as a stream of one column."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    path = Path(log_path)
    compression = "bz2" if path.suffix == ".bz2" else None
    ids: set[str] = set()
    with pa.input_stream(str(path), compression=compression) as stream:
        try:
            reader = pacsv.open_csv(
                stream,
                read_options=pacsv.ReadOptions(block_size=1 << 24),
                parse_options=pacsv.ParseOptions(delimiter="\t"),
                convert_options=pacsv.ConvertOptions(
                    include_columns=["track_id"], column_types={"track_id": pa.string()}
                ),
            )
        except (pa.ArrowInvalid, KeyError) as exc:
            raise ValueError(
                f"cannot read a `track_id` column from {path} (tab-separated, with a header): {exc}"
            ) from None
        for batch in reader:
            ids.update(pc.unique(batch.column(0)).to_pylist())
    ids.discard(None)  # type: ignore[arg-type]
    return ids


def _probe_many(paths: Sequence[str]) -> list[ProbeResult]:
    return [probe(p) for p in paths]


def probe_all(
    paths: Sequence[str], workers: int = 1, progress: Callable[[int], Any] | None = None, chunk: int = 64
) -> list[ProbeResult]:
    """Probe files in parallel worker processes; results in input order."""
    batches = [list(paths[i : i + chunk]) for i in range(0, len(paths), chunk)]
    bar = progress(len(paths)) if progress else None
    results: list[ProbeResult] = []
    try:
        if workers <= 1 or len(batches) <= 1:
            done: Iterable[list[ProbeResult]] = map(_probe_many, batches)
            for part in done:
                results += part
                if bar is not None:
                    bar.update(len(part))
        else:
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as pool:
                for part in pool.map(_probe_many, batches):
                    results += part
                    if bar is not None:
                        bar.update(len(part))
    finally:
        if bar is not None:
            bar.close()
    return results


def build_track_index(
    audio_dir: str | Path,
    log_path: str | Path | None = None,
    workers: int = 1,
    progress: Callable[[int], Any] | None = None,
) -> Any:
    """The track index as a polars frame sorted by track_id (see the module docstring)."""
    import polars as pl

    files = list_audio(audio_dir)
    known = set(files)
    if log_path is not None:
        from_log = log_track_ids(log_path)
        only_log = from_log - known
        if only_log:
            log.warning(
                "%d tracks of the listening log have no audio file in %s (recorded as missing), e.g. %s",
                len(only_log),
                audio_dir,
                sorted(only_log)[:5],
            )
        known |= from_log
    ids = sorted(known)
    with_file = [t for t in ids if t in files]
    probes = dict(zip(with_file, probe_all([files[t] for t in with_file], workers, progress), strict=True))
    rows = []
    for tid in ids:
        if tid in files:
            res = probes[tid]
            path = files[tid]
            fmt = os.path.splitext(path)[1].lower().lstrip(".")
        else:
            res = ProbeResult("missing", f"no audio file for this track in {audio_dir}")
            path, fmt = None, None
        rows.append(
            {
                "track_id": tid,
                "path": path,
                "format": fmt,
                "duration": res.duration,
                "sample_rate": res.sample_rate,
                "channels": res.channels,
                "frames": res.frames,
                "status": res.status,
                "reason": res.reason,
            }
        )
    schema = {c: getattr(pl, t) for c, t in TRACK_COLUMNS.items()}
    return pl.DataFrame(rows, schema=schema)


def summarize(index: Any) -> str:
    """One log line: counts per status and the total duration."""
    counts = dict(index.group_by("status").len().iter_rows())
    seconds = index["duration"].sum() or 0.0
    length = f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"
    listed = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
    return f"{index.height} tracks ({listed}), {length} of audio"

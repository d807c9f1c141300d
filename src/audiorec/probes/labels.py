"""Probe targets read from the dataset's own metadata files, and the groups that keep folds honest.

Music4All (and so Music4All-Onion) ships per-track metadata beside the listening log:

    id_genres.tsv      id, genres (comma-separated)            -> `genres`  multi-label
    id_tags.tsv        id, tags (comma-separated)              -> `tags`    multi-label
    id_metadata.tsv    id, ..., key, mode, tempo, energy,      -> key, mode single-label;
                       valence, danceability, release          -> the rest regression
                                                                  (`release` as its year)
    id_information.tsv id, artist, song, album_name            -> fold groups

The synthetic generator writes `id_genres.tsv` with one `genre` and its latent attributes
(docs/synthetic.md): `genre`, `meter`, `mode`, `key` are single-label, the numeric
attributes regression; its `id_information.tsv` names artist and album like Music4All's.
Every file may also be `.tsv.bz2`. A missing file or column is skipped with a logged
message, not an error: a user's own catalogue has whatever metadata it has.

Tracks of one artist share production, voice and often genre, so a probe that sees an
artist in training recognises the artist, not the genre; `track_groups` gives the artist
(or, where unknown, the album) of every track so outer folds never split one.
"""

from __future__ import annotations

import bz2
import io
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

log = logging.getLogger(__name__)

Kind = Literal["multilabel", "single", "regression"]
KINDS: tuple[Kind, ...] = ("multilabel", "single", "regression")

# (file, column) -> kind, per dataset format. Columns absent from a file are skipped.
MUSIC4ALL_TASKS: dict[str, dict[str, Kind]] = {
    "id_genres": {"genres": "multilabel"},
    "id_tags": {"tags": "multilabel"},
    "id_metadata": {
        "key": "single",
        "mode": "single",
        "tempo": "regression",
        "energy": "regression",
        "valence": "regression",
        "danceability": "regression",
        "release": "regression",
    },
}
SYNTHETIC_TASKS: dict[str, dict[str, Kind]] = {
    "id_genres": {
        "genre": "single",
        "meter": "single",
        "mode": "single",
        "key": "single",
        "tempo": "regression",
        "density": "regression",
        "register": "regression",
        "brightness": "regression",
        "energy": "regression",
        "swing": "regression",
    },
}
INFORMATION_FILE = "id_information"
GROUP_COLUMNS = ("artist", "album_name")


@dataclass(frozen=True)
class LabelSettings:
    """How labels become tasks (the `probes:` config section's label keys)."""

    tasks: tuple[str, ...] | None = None  # None: every task the files allow
    max_labels: int = 50  # multi-label: the most frequent labels kept (MagnaTagATune keeps 50)
    min_count: int = 10  # a class or label with fewer tracks is dropped (it cannot be cross-validated)


@dataclass(frozen=True)
class Task:
    """One probe target over the tracks that have it.

    `y` is int class codes [N] (single), a 0/1 matrix [N, C] (multilabel) or floats [N]
    (regression); `classes` names the codes / columns."""

    name: str
    kind: Kind
    source: str
    track_ids: list[str]
    y: np.ndarray
    classes: list[str]


def find_file(dataset_dir: str | os.PathLike[str], stem: str) -> Path | None:
    """`{stem}.tsv`, else `{stem}.tsv.bz2`, else None."""
    plain = Path(dataset_dir) / f"{stem}.tsv"
    for candidate in (plain, plain.with_name(plain.name + ".bz2")):
        if candidate.exists():
            return candidate
    return None


def read_table(path: Path) -> pl.DataFrame:
    """A tab-separated table, every column as text (the caller converts what it uses).

    Music4All's files quote nothing and may hold `"` inside names, so quoting is off."""
    raw = bz2.decompress(path.read_bytes()) if path.suffix == ".bz2" else path.read_bytes()
    frame = pl.read_csv(io.BytesIO(raw), separator="\t", infer_schema_length=0, quote_char=None)
    if "id" not in frame.columns:
        raise ValueError(f"{path}: needs an `id` column naming the track; it has {frame.columns}")
    return frame.with_columns(pl.col("id").str.strip_chars()).unique("id", keep="first", maintain_order=True)


def task_kinds(dataset_format: str) -> dict[str, dict[str, Kind]]:
    return SYNTHETIC_TASKS if dataset_format == "synthetic" else MUSIC4ALL_TASKS


def available_tasks(dataset_dir: str | os.PathLike[str], dataset_format: str) -> list[tuple[str, str, Kind, Path]]:
    """(task name, column, kind, file) of every task whose file and column exist; the rest logged."""
    found = []
    for stem, columns in task_kinds(dataset_format).items():
        path = find_file(dataset_dir, stem)
        if path is None:
            log.info("probes: no %s.tsv[.bz2] in %s; skipping its tasks %s", stem, dataset_dir, sorted(columns))
            continue
        header = read_table(path).columns
        for column, kind in columns.items():
            if column not in header:
                log.info("probes: %s has no column %r; skipping that task", path.name, column)
                continue
            found.append((column, column, kind, path))
    return found


def _split_labels(value: str | None) -> list[str]:
    if value is None:
        return []
    text = value.strip().strip("[]{}")
    return sorted({part.split(":")[0].strip().strip("'\"").strip() for part in text.split(",")} - {""})


def _multilabel(name: str, source: str, ids: list[str], values: list[str | None], settings: LabelSettings) -> Task | None:
    labels = [_split_labels(v) for v in values]
    counts = Counter(label for row in labels for label in row)
    kept = sorted((lab for lab, c in counts.items() if c >= settings.min_count), key=lambda lab: (-counts[lab], lab))
    kept = sorted(kept[: settings.max_labels])
    if len(kept) < 2:
        log.info("probes: task %s has %d label(s) with >= %d tracks; skipped", name, len(kept), settings.min_count)
        return None
    index = {lab: j for j, lab in enumerate(kept)}
    y = np.zeros((len(ids), len(kept)), dtype=np.int8)
    for i, row in enumerate(labels):
        for lab in row:
            if lab in index:
                y[i, index[lab]] = 1
    has = y.sum(axis=1) > 0
    if (~has).any():
        log.info("probes: task %s: %d track(s) carry none of the %d kept labels; left out", name, int((~has).sum()), len(kept))
    return Task(name, "multilabel", source, [t for t, h in zip(ids, has) if h], y[has], kept)


def _single(name: str, source: str, ids: list[str], values: list[str | None], settings: LabelSettings) -> Task | None:
    clean = [None if v is None or not v.strip() else v.strip() for v in values]
    counts = Counter(v for v in clean if v is not None)
    kept = sorted(c for c, n in counts.items() if n >= settings.min_count)
    dropped = sum(n for c, n in counts.items() if n < settings.min_count) + sum(v is None for v in clean)
    if len(kept) < 2:
        log.info("probes: task %s has %d class(es) with >= %d tracks; skipped", name, len(kept), settings.min_count)
        return None
    if dropped:
        log.info("probes: task %s: %d track(s) without a value or in a class of < %d tracks; left out", name, dropped, settings.min_count)
    index = {c: j for j, c in enumerate(kept)}
    rows = [(t, index[v]) for t, v in zip(ids, clean) if v in index]
    return Task(name, "single", source, [t for t, _ in rows], np.asarray([c for _, c in rows], dtype=np.int64), kept)


def _number(name: str, value: str | None) -> float:
    if value is None or not value.strip():
        return float("nan")
    text = value.strip()
    if name == "release":  # a date or a year: the year
        text = text[:4]
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _regression(name: str, source: str, ids: list[str], values: list[str | None], settings: LabelSettings) -> Task | None:
    y = np.asarray([_number(name, v) for v in values], dtype=np.float64)
    ok = np.isfinite(y)
    if ok.sum() < settings.min_count or np.nanstd(y) == 0:
        log.info("probes: task %s has %d numeric value(s) (or no spread); skipped", name, int(ok.sum()))
        return None
    if (~ok).any():
        log.info("probes: task %s: %d track(s) without a numeric value; left out", name, int((~ok).sum()))
    return Task(name, "regression", source, [t for t, k in zip(ids, ok) if k], y[ok], [])


_BUILDERS = {"multilabel": _multilabel, "single": _single, "regression": _regression}


def load_tasks(
    dataset_dir: str | os.PathLike[str],
    dataset_format: str,
    track_ids: list[str],
    settings: LabelSettings = LabelSettings(),
) -> list[Task]:
    """Every configured task over `track_ids` (the cache's tracks), in the order of the file table.

    Tracks without a label for a task are left out of that task only (and counted in the log).
    A task named in `settings.tasks` that no file provides is an error naming the files read."""
    available = available_tasks(dataset_dir, dataset_format)
    wanted = settings.tasks
    if wanted is not None:
        unknown = sorted(set(wanted) - {name for name, *_ in available})
        if unknown:
            raise ValueError(
                f"probes.tasks lists {unknown}, which no label file in {dataset_dir} provides "
                f"(available: {[name for name, *_ in available]}); remove them or add the file"
            )
    tables: dict[Path, pl.DataFrame] = {}
    tasks = []
    for name, column, kind, path in available:
        if wanted is not None and name not in wanted:
            continue
        if path not in tables:
            table = read_table(path)
            tables[path] = pl.DataFrame({"id": track_ids}).join(table, on="id", how="left", maintain_order="left")
        frame = tables[path]
        task = _BUILDERS[kind](name, path.name, frame["id"].to_list(), frame[column].to_list(), settings)
        if task is not None:
            log.info("probes: task %s (%s, from %s): %d tracks, %d classes", name, kind, path.name, len(task.track_ids), len(task.classes))
            tasks.append(task)
    return tasks


def track_groups(dataset_dir: str | os.PathLike[str], track_ids: list[str]) -> tuple[np.ndarray, str]:
    """(group label per track, what the groups are): the artist, else the album, else the track.

    A track whose artist is blank falls back to its album and then to itself, so groups never
    merge unrelated tracks."""
    path = find_file(dataset_dir, INFORMATION_FILE)
    frame = pl.DataFrame({"id": track_ids})
    kind = "track"
    if path is None:
        log.warning("probes: no %s.tsv[.bz2] in %s: folds split by track (an artist may be on both sides)", INFORMATION_FILE, dataset_dir)
    else:
        table = read_table(path)
        frame = frame.join(table, on="id", how="left", maintain_order="left")
        kind = next((c for c in GROUP_COLUMNS if c in table.columns), "track")
        if kind == "track":
            log.warning("probes: %s has neither an artist nor an album_name column: folds split by track", path.name)
        elif kind != "artist":
            log.warning("probes: %s has no artist column: folds are album-disjoint", path.name)
    groups = []
    for row in frame.iter_rows(named=True):
        label = None
        for column in GROUP_COLUMNS:
            value = row.get(column)
            if value is not None and str(value).strip():
                label = f"{column}:{str(value).strip()}"
                break
        groups.append(label or f"track:{row['id']}")
    return np.asarray(groups, dtype=object), kind

"""Generating a whole synthetic dataset into a folder in the Music4All-Onion layout.

    userid_trackid_timestamp.tsv   the listening log, newest first per user
    audios/{track_id}.{mp3,wav,flac}
    id_genres.tsv                  ground truth: id, genre, then the latent attributes
    id_information.tsv             id, artist, song, album_name (as Music4All), plus album
                                   track number, release date and the artist's scene
    user_tastes.tsv                ground truth of every user's taste and behaviour

Users and clips are independent given the catalogue, so both are farmed out to a pool of
worker processes; each draws from its own seeded stream, which makes the output
identical whatever the number of workers. Every file is written atomically, and the
audio folder is filled under a temporary name and renamed into place at the end.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polars as pl
import soundfile as sf

from audiorec.io import atomic_path

from .catalog import Catalog, build_catalog
from .composition import TrackPlan
from .genres import TASTE_ATTRIBUTES
from .listening import Listener, Users, build_users
from .render import render_track
from .settings import SyntheticSettings

log = logging.getLogger("audiorec.synthetic")

LOG_NAME = "userid_trackid_timestamp.tsv"
GENRES_NAME = "id_genres.tsv"
INFORMATION_NAME = "id_information.tsv"
TASTES_NAME = "user_tastes.tsv"
AUDIO_DIR = "audios"
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

_SUBTYPES = {"mp3": ("MP3", "MPEG_LAYER_III"), "wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16")}

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class DatasetPaths:
    """Where each part of a dataset goes (the workflow names them; `in_folder` gives the defaults)."""

    log: Path
    genres: Path
    information: Path
    tastes: Path
    audio: Path

    @classmethod
    def in_folder(cls, folder: str | os.PathLike[str]) -> DatasetPaths:
        root = Path(folder)
        return cls(root / LOG_NAME, root / GENRES_NAME, root / INFORMATION_NAME, root / TASTES_NAME, root / AUDIO_DIR)


@dataclass(frozen=True)
class Summary:
    n_tracks: int
    n_users: int
    n_events: int
    n_users_with_events: int
    n_tracks_listened: int
    seconds: float
    #: wall seconds of each phase: catalogue (and users), log, tables, audio
    phases: dict[str, float] = field(default_factory=dict)

    def __str__(self) -> str:
        return (
            f"{self.n_tracks} tracks ({self.n_tracks_listened} listened), {self.n_users} users "
            f"({self.n_users_with_events} with events), {self.n_events} events in {self.seconds:.1f} s"
        )


# --- worker-side state: set once per worker process by the pool initialiser ---

_LISTENER: Listener | None = None


def _init_listener(settings: SyntheticSettings, catalog: Catalog, users: Users) -> None:
    global _LISTENER
    _LISTENER = Listener(settings, catalog, users)


def _simulate_users(chunk: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    assert _LISTENER is not None
    return [_LISTENER.simulate(u) for u in chunk]


def _render_and_write(job: tuple[TrackPlan, float, int, int, str, str]) -> tuple[str, int]:
    plan, seconds, sample_rate, seed, audio_format, folder = job
    samples = render_track(plan, seconds, sample_rate, seed)
    fmt, subtype = _SUBTYPES[audio_format]
    path = Path(folder) / f"{plan.track_id}.{audio_format}"
    if subtype == "PCM_16":  # quantise here, so that wav and flac hold the very same samples
        samples = np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16)
    sf.write(path, samples, sample_rate, format=fmt, subtype=subtype)
    return plan.track_id, len(samples)


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _map(
    fn: Callable[[T], R],
    items: list[T],
    threads: int,
    initializer: Callable[..., None] | None = None,
    initargs: tuple[Any, ...] = (),
    progress: Callable[[Iterable[R], int], Iterable[R]] | None = None,
) -> list[R]:
    """fn over items in order, in a process pool of `threads` workers (inline for one)."""
    if threads <= 1 or len(items) <= 1:
        if initializer is not None:
            initializer(*initargs)
        results: Iterable[R] = map(fn, items)
        return list(progress(results, len(items)) if progress else results)
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with ctx.Pool(processes=threads, initializer=initializer, initargs=initargs) as pool:
        results = pool.imap(fn, items, chunksize=1)
        return list(progress(results, len(items)) if progress else results)


def _progress(desc: str, unit: str) -> Callable[[Iterable[R], int], Iterable[R]]:
    from audiorec.runtime import progress

    return lambda it, total: progress(it, total=total, desc=desc, unit=unit)


# --- the dataset ---


def simulate_log(settings: SyntheticSettings, catalog: Catalog, users: Users, threads: int = 1) -> pl.DataFrame:
    """The listening log (user_id, track_id, timestamp as datetime), newest first per user."""
    chunk = max(1, min(200, settings.n_users // max(1, 4 * threads)))
    parts = _map(
        _simulate_users, list(_chunks(list(range(users.n_users)), chunk)), threads,
        initializer=_init_listener, initargs=(settings, catalog, users),
    )
    per_user = [r for part in parts for r in part]
    counts = np.array([len(tracks) for tracks, _ in per_user], dtype=np.int64)
    user_index = np.repeat(np.arange(users.n_users), counts)
    track_index = np.concatenate([tracks for tracks, _ in per_user]) if per_user else np.zeros(0, np.int64)
    seconds = np.concatenate([times for _, times in per_user]) if per_user else np.zeros(0)
    start = np.datetime64(settings.start.strftime("%Y-%m-%dT%H:%M:%S"), "s")
    frame = pl.DataFrame({
        "user_id": np.asarray(users.user_ids, dtype=object)[user_index].astype(str),
        "track_id": np.asarray(catalog.track_ids, dtype=object)[track_index].astype(str),
        "timestamp": (start + seconds.astype("timedelta64[s]")).astype("datetime64[ms]"),
    })
    return frame.sort(["user_id", "timestamp"], descending=[False, True], maintain_order=True)


def genres_table(catalog: Catalog) -> pl.DataFrame:
    """id_genres.tsv: id, genre, then the latent attributes (numeric first, then mode and key)."""
    a = catalog.attributes
    return pl.DataFrame({
        "id": catalog.track_ids,
        "genre": [catalog.genres[g] for g in catalog.genre],
        **{name: a[name] for name in ("tempo", "density", "register", "brightness", "energy", "swing")},
        "meter": a["meter"],
        "mode": a["mode"].astype(str),
        "key": a["key"].astype(str),
    })


def information_table(settings: SyntheticSettings, catalog: Catalog) -> pl.DataFrame:
    release_dates = [
        (settings.start + dt.timedelta(seconds=float(r))).strftime("%Y-%m-%d") for r in catalog.release
    ]
    return pl.DataFrame({
        "id": catalog.track_ids,
        "artist": [catalog.artist_names[a] for a in catalog.artist],
        "song": catalog.song_names,
        "album_name": [catalog.album_names[b] for b in catalog.album],
        "album_track": (catalog.album_position + 1).astype(np.int64),
        "release": release_dates,
        "scene": catalog.artist_scene[catalog.artist].astype(np.int64),
        "popularity": np.round(catalog.popularity, 4),
    })


def tastes_table(settings: SyntheticSettings, catalog: Catalog, users: Users) -> pl.DataFrame:
    """user_tastes.tsv: one row per user with the ground truth of their taste and behaviour."""
    period = (settings.end - settings.start).total_seconds()
    mean_taste = np.zeros_like(users.taste_start)
    for u in range(users.n_users):  # the mixture averaged over the user's active span
        a, b = users.active_from[u] / period, users.active_to[u] / period
        mid = (a + b) / 2.0
        mean_taste[u] = (1 - mid) * users.taste_start[u] + mid * users.taste_end[u]

    def date(seconds: float) -> str:
        return (settings.start + dt.timedelta(seconds=float(seconds))).strftime("%Y-%m-%d")

    columns: dict[str, Any] = {
        "user_id": users.user_ids,
        "top_genre": [catalog.genres[g] for g in mean_taste.argmax(axis=1)],
    }
    for g, name in enumerate(catalog.genres):
        columns[f"taste_{name}"] = np.round(users.taste_start[:, g], 5)
    for g, name in enumerate(catalog.genres):
        columns[f"taste_end_{name}"] = np.round(users.taste_end[:, g], 5)
    for j, name in enumerate(TASTE_ATTRIBUTES):
        columns[f"prefers_{name}"] = np.round(users.preference[:, j], 4)
    columns["mainstream"] = np.round(users.mainstream, 4)
    columns["scenes"] = [";".join(str(s) for s in scenes) for scenes in users.scenes]
    columns["artists"] = [";".join(catalog.artist_names[a] for a in artists) for artists in users.artists]
    columns["active_from"] = [date(x) for x in users.active_from]
    columns["active_to"] = [date(min(x, period - 1)) for x in users.active_to]
    columns["expected_events"] = np.round(users.target_events, 1)
    return pl.DataFrame(columns)


def _write_tsv(frame: pl.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.write_csv(tmp, separator="\t", datetime_format=TIMESTAMP_FORMAT, float_precision=None)


def write_audio(settings: SyntheticSettings, catalog: Catalog, folder: Path, threads: int = 1) -> None:
    """Render and encode every clip into `folder` (filled under a temporary name, then renamed)."""
    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        jobs = [
            (plan, settings.clip_seconds, settings.sample_rate, settings.seed, settings.audio_format, str(tmp))
            for plan in catalog.plans
        ]
        _map(_render_and_write, jobs, threads, progress=_progress("clips", "clip"))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def generate_dataset(
    settings: SyntheticSettings | dict[str, Any] | None,
    paths: DatasetPaths | str | os.PathLike[str],
    threads: int = 1,
    audio: bool = True,
) -> Summary:
    """Generate a dataset; `audio=False` writes only the tables (quick looks at the log)."""
    began = time.perf_counter()
    if not isinstance(settings, SyntheticSettings):
        settings = SyntheticSettings.from_mapping(settings)
    if not isinstance(paths, DatasetPaths):
        paths = DatasetPaths.in_folder(paths)
    threads = max(1, int(threads))
    log.info("synthetic dataset: %s", settings.to_dict())

    phases: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        phases[name] = phases.get(name, 0.0) + now - clock
        clock = now

    catalog = build_catalog(settings)
    users = build_users(settings, catalog)
    lap("catalogue")
    log.info("catalogue: %d tracks by %d artists on %d albums; %d users",
             catalog.n_tracks, len(catalog.artist_names), len(catalog.album_names), users.n_users)
    frame = simulate_log(settings, catalog, users, threads)
    lap("log")
    log.info("listening log: %d events", frame.height)

    _write_tsv(genres_table(catalog), paths.genres)
    _write_tsv(information_table(settings, catalog), paths.information)
    _write_tsv(tastes_table(settings, catalog, users), paths.tastes)
    if audio:
        lap("tables")
        write_audio(settings, catalog, paths.audio, threads)
        lap("audio")
    _write_tsv(frame, paths.log)  # last: its presence means the rest is there too
    lap("tables")

    summary = Summary(
        n_tracks=catalog.n_tracks,
        n_users=users.n_users,
        n_events=frame.height,
        n_users_with_events=frame["user_id"].n_unique(),
        n_tracks_listened=frame["track_id"].n_unique(),
        seconds=time.perf_counter() - began,
        phases=phases,
    )
    log.info("done: %s", summary)
    return summary

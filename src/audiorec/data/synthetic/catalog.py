"""The catalogue: artists, albums and tracks with latent attributes, release dates and popularity.

Tracks are laid out artist by artist, album by album, in track order, so that an
artist's or an album's tracks are a contiguous slice: sessions that play through an
album, or through an artist's discography, just walk forward.

What a track sounds like comes from its genre and its artist's signature (the artist's
own tempo, register, brightness, instruments, favourite progression and key), plus
per-track variation. What makes a track popular does not: artists' popularity is a
heavy-tailed draw, artists belong to "scenes" that cut across genres, catalogue tracks
rise or fade over the year, and new releases arrive with a burst of attention that
decays. No audio model can hear any of that, which is the point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import ids
from .composition import TrackPlan
from .genres import GENRES, TASTE_ATTRIBUTES
from .music import MODES, PITCH_NAMES
from .settings import SyntheticSettings

CATALOG_STREAM = 1
DAY = 86400
WEEK = 7 * DAY


@dataclass
class Catalog:
    """Arrays over tracks [T] (in artist/album/track order), artists [A] and albums [B].

    Times are seconds relative to `settings.start`.
    """

    genres: list[str]
    track_ids: list[str]
    song_names: list[str]
    genre: np.ndarray  # [T] index into genres
    artist: np.ndarray  # [T]
    album: np.ndarray  # [T]
    album_position: np.ndarray  # [T] 0-based track number within its album
    release: np.ndarray  # [T] seconds, the album's release time
    length: np.ndarray  # [T] nominal full length of the song, seconds
    popularity: np.ndarray  # [T] base popularity (heavy-tailed)
    trend: np.ndarray  # [T, W] weekly popularity multiplier (0 before release)
    attributes: dict[str, np.ndarray]  # numeric and categorical attributes, as written to id_genres.tsv
    taste_z: np.ndarray  # [T, len(TASTE_ATTRIBUTES)] attributes standardised within genre
    plans: list[TrackPlan]
    artist_names: list[str]
    artist_genre: np.ndarray  # [A]
    artist_scene: np.ndarray  # [A]
    artist_popularity: np.ndarray  # [A]
    artist_slices: np.ndarray  # [A, 2] start, end track index
    album_names: list[str]
    album_slices: np.ndarray  # [B, 2]
    album_release: np.ndarray  # [B] seconds
    n_weeks: int

    @property
    def n_tracks(self) -> int:
        return len(self.track_ids)


def _choice(rng: np.random.Generator, options: dict | tuple | list, weights: list[float] | None = None) -> Any:
    keys = list(options)
    if weights is None and isinstance(options, dict):
        weights = list(options.values())
    if weights is not None:
        p = np.asarray(weights, dtype=np.float64)
        return keys[int(rng.choice(len(keys), p=p / p.sum()))]
    return keys[int(rng.integers(len(keys)))]


def _album_sizes(rng: np.random.Generator, n: int) -> list[int]:
    """Split an artist's n tracks into albums of 4-12 tracks (an EP or single for the rest)."""
    sizes = []
    while n > 0:
        size = min(n, int(rng.integers(4, 13)))
        sizes.append(size)
        n -= size
    return sizes


def build_catalog(settings: SyntheticSettings) -> Catalog:
    rng = np.random.default_rng([settings.seed, CATALOG_STREAM])
    genres = list(settings.genres)
    n_genres = len(genres)
    n_tracks = settings.n_tracks
    prevalence = np.array([GENRES[g].prevalence for g in genres])
    prevalence = prevalence / prevalence.sum()

    # --- artists ---
    n_artists = int(np.clip(round(n_tracks / settings.tracks_per_artist), n_genres, n_tracks))
    artist_genre = np.concatenate([rng.permutation(n_genres), rng.choice(n_genres, size=n_artists - n_genres, p=prevalence)])
    rng.shuffle(artist_genre)
    share = rng.lognormal(0.0, 0.8, size=n_artists)
    counts = 1 + rng.multinomial(n_tracks - n_artists, share / share.sum())
    artist_popularity = rng.lognormal(0.0, settings.popularity_sigma, size=n_artists)
    artist_scene = rng.integers(settings.n_scenes, size=n_artists)
    artist_names = ids.names(rng, n_artists, max_words=2, unique=True)
    artist_slope = rng.normal(0.0, settings.trend_sigma, size=n_artists)

    # --- albums and their release dates ---
    album_artist: list[int] = []
    album_size: list[int] = []
    for a in range(n_artists):
        for size in _album_sizes(rng, int(counts[a])):
            album_artist.append(a)
            album_size.append(size)
    n_albums = len(album_artist)
    period = (settings.end - settings.start).total_seconds()
    cold_from = (settings.cold_start - settings.start).total_seconds()
    release = -rng.uniform(30 * DAY, 15 * 365 * DAY, size=n_albums)  # catalogue: before the log starts
    order = rng.permutation(n_albums)
    cold_target = settings.cold_item_share * n_tracks
    new_target = settings.new_release_share * n_tracks
    cold_count = new_count = 0.0
    kind = np.zeros(n_albums, dtype=np.int8)  # 0 catalogue, 1 released during the log, 2 cold
    for b in order:
        if cold_count < cold_target and cold_count + album_size[b] <= cold_target + 6:
            kind[b] = 2
            cold_count += album_size[b]
        elif new_count < new_target and new_count + album_size[b] <= new_target + 6:
            kind[b] = 1
            new_count += album_size[b]
    if not (kind == 0).any():  # always keep some catalogue: the charts need tracks from day one
        kind[order[0]] = 0
    release[kind == 1] = rng.uniform(0.0, cold_from, size=int((kind == 1).sum()))
    # cold releases: after cold_start and at least two days before the end, so they get listened to
    release[kind == 2] = rng.uniform(cold_from + 3600, period - 2 * DAY, size=int((kind == 2).sum()))

    # lay tracks out artist by artist, albums in release order
    album_artist_arr = np.asarray(album_artist)
    layout = sorted(range(n_albums), key=lambda b: (album_artist[b], release[b]))
    album_names = ids.names(rng, n_albums, max_words=3)
    track_album = np.concatenate([np.full(album_size[b], i) for i, b in enumerate(layout)])
    album_slices = np.zeros((n_albums, 2), dtype=np.int64)
    start = 0
    for i, b in enumerate(layout):
        album_slices[i] = (start, start + album_size[b])
        start += album_size[b]
    album_release = release[layout]
    album_artist_sorted = album_artist_arr[layout]
    track_artist = album_artist_sorted[track_album]
    album_position = np.concatenate([np.arange(album_size[b]) for b in layout])
    track_release = album_release[track_album]
    artist_slices = np.zeros((n_artists, 2), dtype=np.int64)
    bounds = np.searchsorted(track_artist, np.arange(n_artists + 1))
    artist_slices[:, 0], artist_slices[:, 1] = bounds[:-1], bounds[1:]

    # --- popularity and its trends over the weeks of the log ---
    track_genre = artist_genre[track_artist]
    popularity = artist_popularity[track_artist] * rng.lognormal(0.0, 0.6, size=n_tracks)
    popularity *= np.where(album_position == 0, 2.0, 1.0)  # the opener is the single
    n_weeks = int(np.ceil(period / WEEK))
    week_mid = (np.arange(n_weeks) + 0.5) * WEEK
    slope = artist_slope[track_artist] + rng.normal(0.0, 0.3 * settings.trend_sigma, size=n_tracks)
    trend = np.exp(np.outer(slope, week_mid / period - 0.5))
    new = track_release >= 0
    hype = rng.lognormal(np.log(4.0), 0.5, size=n_tracks)
    decay = rng.uniform(3.0, 10.0, size=n_tracks) * WEEK
    since = week_mid[None, :] - track_release[:, None]
    burst = np.where(since >= -WEEK / 2, 1.0 + hype[:, None] * np.exp(-np.clip(since, 0, None) / decay[:, None]), 0.0)
    trend = np.where(new[:, None], burst, trend)
    length = np.clip(rng.lognormal(np.log(225.0), 0.3, size=n_tracks), 90.0, 600.0)
    length *= np.where(np.isin(track_genre, [genres.index(g) for g in ("classical", "ambient") if g in genres]), 1.6, 1.0)

    # --- latent attributes: genre range, artist signature, track variation ---
    attributes, plans = _attributes_and_plans(rng, settings, genres, track_genre, track_artist, n_artists, artist_genre)
    track_id_list = ids.track_ids(rng, n_tracks)
    plans = [
        TrackPlan(track_id=track_id_list[i], index=i, **fields) for i, fields in enumerate(plans)
    ]
    taste_z = np.zeros((n_tracks, len(TASTE_ATTRIBUTES)))
    for g in range(n_genres):
        rows = track_genre == g
        for j, name in enumerate(TASTE_ATTRIBUTES):
            x = attributes[name][rows]
            sd = x.std()
            taste_z[rows, j] = (x - x.mean()) / sd if sd > 0 else 0.0

    return Catalog(
        genres=genres,
        track_ids=track_id_list,
        song_names=ids.names(rng, n_tracks, max_words=3),
        genre=track_genre,
        artist=track_artist,
        album=track_album,
        album_position=album_position,
        release=track_release,
        length=length,
        popularity=popularity,
        trend=trend,
        attributes=attributes,
        taste_z=taste_z,
        plans=plans,
        artist_names=artist_names,
        artist_genre=artist_genre,
        artist_scene=artist_scene,
        artist_popularity=artist_popularity,
        artist_slices=artist_slices,
        album_names=album_names,
        album_slices=album_slices,
        album_release=album_release,
        n_weeks=n_weeks,
    )


def _attributes_and_plans(
    rng: np.random.Generator,
    settings: SyntheticSettings,
    genres: list[str],
    track_genre: np.ndarray,
    track_artist: np.ndarray,
    n_artists: int,
    artist_genre: np.ndarray,
) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """Attribute values and arrangement choices of every track (see module docstring)."""
    signature = []
    for a in range(n_artists):
        g = GENRES[genres[artist_genre[a]]]
        signature.append({
            "tempo": rng.uniform(0.1, 0.9),
            "density": rng.normal(0.0, g.density[1]),
            "register": rng.uniform(*g.register),
            "brightness": rng.normal(0.0, g.brightness[1]),
            "energy": rng.normal(0.0, g.energy[1]),
            "swing": rng.uniform(*g.swing),
            "meter": _choice(rng, g.meters),
            "key": int(rng.integers(12)),
            "mode": _choice(rng, g.modes),
            "progression": int(rng.integers(len(g.progressions))),
            "lead": _choice(rng, g.leads),
            "comp": _choice(rng, g.comps),
            "bass": _choice(rng, g.basses),
            "drums": int(rng.integers(max(1, len(g.drum_patterns)))),
            "reverb": rng.uniform(*g.reverb),
            "room": rng.uniform(*g.room),
        })
    columns: dict[str, list] = {k: [] for k in ("tempo", "density", "register", "brightness", "energy", "swing", "meter", "mode", "key")}
    plans = []
    for i in range(len(track_genre)):
        g = GENRES[genres[track_genre[i]]]
        s = signature[track_artist[i]]

        def keep(p: float, own: Any, alternative: Callable[[], Any]) -> Any:
            """The artist's own choice with probability p, else a fresh one."""
            return own if rng.random() < p else alternative()

        u = float(np.clip(s["tempo"] + rng.normal(0.0, 0.12), 0.0, 1.0))
        tempo = round(g.tempo[0] + u * (g.tempo[1] - g.tempo[0]), 1)
        density = round(float(max(0.15, g.density[0] + s["density"] + rng.normal(0.0, 0.5 * g.density[1]))), 3)
        register = round(float(np.clip(s["register"] + rng.normal(0.0, 1.5), g.register[0] - 2, g.register[1] + 2)), 2)
        brightness = round(float(np.clip(g.brightness[0] + s["brightness"] + rng.normal(0.0, 0.5 * g.brightness[1]), 0.05, 0.95)), 3)
        energy = round(float(np.clip(g.energy[0] + s["energy"] + rng.normal(0.0, 0.5 * g.energy[1]), 0.05, 0.98)), 3)
        swing = round(float(np.clip(s["swing"] + rng.normal(0.0, 0.01), *g.swing)), 3)
        meter = int(keep(0.85, s["meter"], lambda: _choice(rng, g.meters)))
        key = int(keep(0.4, s["key"], lambda: int(rng.integers(12))))
        mode = str(keep(0.7, s["mode"], lambda: _choice(rng, g.modes)))
        assert mode in MODES
        for name, value in (("tempo", tempo), ("density", density), ("register", register), ("brightness", brightness),
                            ("energy", energy), ("swing", swing), ("meter", meter), ("mode", mode), ("key", PITCH_NAMES[key])):
            columns[name].append(value)
        plans.append({
            "genre": g.name,
            "tempo": tempo,
            "meter": meter,
            "swing": swing,
            "density": density,
            "register": register,
            "brightness": brightness,
            "energy": energy,
            "key": key,
            "mode": mode,
            "progression": int(keep(0.6, s["progression"], lambda: int(rng.integers(len(g.progressions))))),
            "lead": str(keep(0.85, s["lead"], lambda: _choice(rng, g.leads))),
            "comp": str(keep(0.85, s["comp"], lambda: _choice(rng, g.comps))),
            "bass": str(keep(0.85, s["bass"], lambda: _choice(rng, g.basses))),
            "drums": int(keep(0.75, s["drums"], lambda: int(rng.integers(max(1, len(g.drum_patterns)))))),
            "reverb": round(float(np.clip(s["reverb"] + rng.normal(0.0, 0.02), 0.0, 0.9)), 3),
            "room": round(float(np.clip(s["room"] + rng.normal(0.0, 0.1), 0.3, 6.0)), 3),
        })
    attributes = {
        name: np.asarray(values, dtype=object if name in ("mode", "key") else np.float64)
        for name, values in columns.items()
    }
    attributes["meter"] = attributes["meter"].astype(np.int64)
    return attributes, plans


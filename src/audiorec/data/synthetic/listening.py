"""Listeners and their listening log.

A user has an audible taste, a mixture over genres (drifting slowly over the period)
plus preferences over attributes within a genre (faster or slower, brighter or darker,
...), and an inaudible one: the scenes and artists they follow and how much they go
with the charts. Every fresh pick is audible with probability `audible_share` (a genre
from the current mixture, then a track that fits the preferences) and inaudible
otherwise (a followed artist, an artist of a followed scene, or the week's chart with
its trends and new-release bursts).

Listening happens in sessions. Album sessions play through an album in track order; other
sessions mix fresh picks, replays of earlier listens (repeat listens, recent ones
preferred) and continuations with the same artist, half of them the artist's next track
in discography order. The sequences therefore carry structure a sequential recommender
can learn, and content-only and collaborative-only models each miss part of the picture.

Each user is simulated from their own random stream, so users can be simulated by any
number of worker processes with identical results.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import ids
from .catalog import DAY, WEEK, Catalog
from .genres import GENRES, TASTE_ATTRIBUTES
from .settings import SyntheticSettings

USERS_STREAM = 2
LOG_STREAM = 3

#: relative chance that a session starts in each hour of the day (listening peaks in the evening)
HOURLY = np.array([2, 1.2, 0.7, 0.5, 0.4, 0.5, 1, 2, 3, 3.2, 3, 3, 3.4, 3.4, 3.2, 3.3, 3.6, 4.2, 4.8, 5.2, 5.4, 5, 4, 3])
HOURLY = HOURLY / HOURLY.sum()


@dataclass
class Users:
    user_ids: list[str]
    active_from: np.ndarray  # [U] seconds relative to settings.start
    active_to: np.ndarray  # [U]
    target_events: np.ndarray  # [U] expected number of listening events
    taste_start: np.ndarray  # [U, G] genre mixture at settings.start
    taste_end: np.ndarray  # [U, G] genre mixture at settings.end
    preference: np.ndarray  # [U, len(TASTE_ATTRIBUTES)] within-genre attribute preferences
    mainstream: np.ndarray  # [U] share of inaudible picks taken from the charts
    scenes: list[np.ndarray]  # followed scene ids
    artists: list[np.ndarray]  # followed artist indices

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    def taste_at(self, u: int, t: float, period: float) -> np.ndarray:
        d = np.clip(t / period, 0.0, 1.0)
        return (1.0 - d) * self.taste_start[u] + d * self.taste_end[u]


def build_users(settings: SyntheticSettings, catalog: Catalog) -> Users:
    rng = np.random.default_rng([settings.seed, USERS_STREAM])
    n = settings.n_users
    n_genres = len(catalog.genres)
    period = (settings.end - settings.start).total_seconds()
    cold_from = (settings.cold_start - settings.start).total_seconds()

    kind = rng.choice(3, size=n, p=[1 - settings.cold_user_share - settings.late_user_share,
                                     settings.late_user_share, settings.cold_user_share])
    active_from = np.zeros(n)
    late = kind == 1
    active_from[late] = rng.uniform(30 * DAY, cold_from - 14 * DAY, size=int(late.sum()))
    cold = kind == 2
    active_from[cold] = rng.uniform(cold_from + 3600, period - 2 * DAY, size=int(cold.sum()))
    active_to = np.full(n, period)
    churn = (rng.random(n) < settings.churn_share) & ~cold
    active_to[churn] = np.minimum(rng.uniform(active_from[churn] + 30 * DAY, period), period)
    span = active_to - active_from
    sigma = settings.activity_sigma
    activity = rng.lognormal(-0.5 * sigma**2, sigma, size=n)
    target = np.maximum(3.0, settings.events_per_user * activity * span / span.mean())

    prevalence = np.array([GENRES[g].prevalence for g in catalog.genres])
    alpha = settings.taste_concentration * prevalence / prevalence.mean()
    taste_start = rng.dirichlet(alpha, size=n)
    drifted = rng.dirichlet(alpha, size=n)
    taste_end = (1.0 - settings.taste_drift) * taste_start + settings.taste_drift * drifted
    preference = rng.normal(0.0, 1.0, size=(n, len(TASTE_ATTRIBUTES)))
    mainstream = rng.beta(2.0, 3.0, size=n)

    scene_artists = [np.flatnonzero(catalog.artist_scene == s) for s in range(settings.n_scenes)]
    scenes, artists = [], []
    for _ in range(n):
        k = min(settings.n_scenes, 1 + int(rng.binomial(2, 0.35)))
        followed_scenes = np.sort(rng.choice(settings.n_scenes, size=k, replace=False))
        pool = np.concatenate([scene_artists[s] for s in followed_scenes])
        m = min(len(pool), 2 + int(rng.poisson(3)))
        if m:
            w = np.sqrt(catalog.artist_popularity[pool])
            followed = np.sort(rng.choice(pool, size=m, replace=False, p=w / w.sum()))
        else:
            followed = np.zeros(0, dtype=np.int64)
        scenes.append(followed_scenes)
        artists.append(followed)
    assert n_genres == taste_start.shape[1]
    return Users(
        user_ids=ids.user_ids(rng, n),
        active_from=active_from,
        active_to=active_to,
        target_events=target,
        taste_start=taste_start,
        taste_end=taste_end,
        preference=preference,
        mainstream=mainstream,
        scenes=scenes,
        artists=artists,
    )


class Listener:
    """Simulates one user's log against shared catalogue tables (built once per worker)."""

    def __init__(self, settings: SyntheticSettings, catalog: Catalog, users: Users) -> None:
        self.s = settings
        self.c = catalog
        self.users = users
        self.period = (settings.end - settings.start).total_seconds()
        pop = catalog.popularity
        # cumulative weights for "a track of this artist, by popularity"
        self.pop_cum = np.cumsum(pop)
        # the weekly charts: cumulative popularity x trend over all tracks
        self.chart_cum = np.cumsum(pop[:, None] * catalog.trend, axis=0).T.copy()  # [W, T]
        # tracks grouped by genre for audible picks
        self.by_genre = np.argsort(catalog.genre, kind="stable")
        bounds = np.searchsorted(catalog.genre[self.by_genre], np.arange(len(catalog.genres) + 1))
        self.genre_bounds = bounds
        self.pop_damped = pop[self.by_genre] ** 0.5
        self.z_by_genre = catalog.taste_z[self.by_genre]
        # artists of each scene, by popularity
        self.scene_artists = [np.flatnonzero(catalog.artist_scene == s) for s in range(settings.n_scenes)]

    # --- picking tracks ---

    @staticmethod
    def _draw(cum: np.ndarray, lo: int, hi: int, rng: np.random.Generator) -> int:
        """Index in [lo, hi) drawn in proportion to the increments of a cumulative sum."""
        base = cum[lo - 1] if lo > 0 else 0.0
        x = base + rng.random() * (cum[hi - 1] - base)
        return min(int(np.searchsorted(cum, x, side="right")), hi - 1)

    def _artist_track(self, artist: int, t: float, rng: np.random.Generator) -> int | None:
        lo, hi = self.c.artist_slices[artist]
        for _ in range(8):
            i = self._draw(self.pop_cum, lo, hi, rng)
            if self.c.release[i] <= t:
                return i
        available = np.flatnonzero(self.c.release[lo:hi] <= t)
        return int(lo + available[0]) if available.size else None

    def _chart(self, t: float, rng: np.random.Generator) -> int:
        week = min(int(t // WEEK), self.c.n_weeks - 1)
        cum = self.chart_cum[week]
        for _ in range(30):
            i = self._draw(cum, 0, len(cum), rng)
            if self.c.release[i] <= t:
                return i
        return int(np.flatnonzero(self.c.release <= t)[0])

    def _audible(self, t: float, mixture_cum: np.ndarray, taste_cum: np.ndarray, rng: np.random.Generator) -> int:
        g = min(int(np.searchsorted(mixture_cum, rng.random() * mixture_cum[-1], side="right")), len(mixture_cum) - 1)
        lo, hi = self.genre_bounds[g], self.genre_bounds[g + 1]
        if hi <= lo:  # a genre without tracks (tiny catalogues)
            return self._chart(t, rng)
        for _ in range(30):
            i = int(self.by_genre[self._draw(taste_cum, lo, hi, rng)])
            if self.c.release[i] <= t:
                return i
        return self._chart(t, rng)

    def _inaudible(self, u: int, t: float, scene_pool: np.ndarray, scene_cum: np.ndarray,
                   rng: np.random.Generator) -> int:
        if rng.random() < self.users.mainstream[u]:
            return self._chart(t, rng)
        if rng.random() < 0.5 and self.users.artists[u].size:
            artist = int(self.users.artists[u][rng.integers(self.users.artists[u].size)])
        elif scene_pool.size:
            artist = int(scene_pool[self._draw(scene_cum, 0, len(scene_cum), rng)])
        else:
            return self._chart(t, rng)
        track = self._artist_track(artist, t, rng)
        return self._chart(t, rng) if track is None else track

    def _continue_artist(self, previous: int, t: float, rng: np.random.Generator) -> int | None:
        """Another track by the same artist: half the time the next one in discography order."""
        lo, hi = self.c.artist_slices[self.c.artist[previous]]
        if rng.random() < 0.5 and previous + 1 < hi and self.c.release[previous + 1] <= t:
            return previous + 1
        track = self._artist_track(int(self.c.artist[previous]), t, rng)
        return None if track == previous else track

    # --- one user's log ---

    def simulate(self, u: int) -> tuple[np.ndarray, np.ndarray]:
        """Track indices and times (seconds since start) of user u's listening events."""
        s, c, users = self.s, self.c, self.users
        rng = np.random.default_rng([s.seed, LOG_STREAM, u])
        weights = np.exp(s.attribute_taste * (self.z_by_genre @ users.preference[u]) / np.sqrt(len(TASTE_ATTRIBUTES)))
        taste_cum = np.cumsum(weights * self.pop_damped)
        scene_pool = np.concatenate([self.scene_artists[k] for k in users.scenes[u]])
        scene_cum = np.cumsum(c.artist_popularity[scene_pool])

        def discover(t: float, mixture_cum: np.ndarray) -> int:
            if rng.random() < s.audible_share:
                return self._audible(t, mixture_cum, taste_cum, rng)
            return self._inaudible(u, t, scene_pool, scene_cum, rng)

        # session plan: kinds and lengths until the user's expected number of events
        target = rng.poisson(users.target_events[u])
        kinds, lengths = [], []
        total = 0
        while total < max(target, 1):
            album = rng.random() < s.album_session_share
            length = int(rng.geometric(1.0 / s.session_length))
            kinds.append(album)
            lengths.append(length)
            total += length
        lo, hi = users.active_from[u], users.active_to[u]
        days = np.sort(rng.uniform(lo, hi, size=len(kinds)) // DAY) * DAY
        hours = rng.choice(24, size=len(kinds), p=HOURLY)
        starts = np.sort(np.maximum(days + hours * 3600 + rng.uniform(0, 3600, size=len(kinds)), lo))

        tracks: list[int] = []
        times: list[float] = []
        clock = lo
        for album, length, start in zip(kinds, lengths, starts, strict=True):
            t = max(start, clock + 60.0)
            if t >= hi:
                break
            mixture_cum = np.cumsum(users.taste_at(u, t, self.period))  # drift is slow: once a session
            if album:
                seed = discover(t, mixture_cum)
                a_lo, a_hi = c.album_slices[c.album[seed]]
                first = a_lo if rng.random() < 0.5 else seed
                session = list(range(first, min(a_hi, first + length)))
            else:
                session = []
                for _ in range(length):
                    r = rng.random()
                    pick = None
                    if tracks and r < s.repeat_share:
                        pool = tracks[-20:] if rng.random() < 0.5 else tracks
                        pick = pool[int(rng.integers(len(pool)))]
                    elif session and r < s.repeat_share + s.artist_continue:
                        pick = self._continue_artist(session[-1], t, rng)
                    if pick is None:
                        pick = discover(t, mixture_cum)
                    session.append(pick)
            for track in session:
                if t >= hi:
                    break
                tracks.append(int(track))
                times.append(t)
                t += c.length[track] * rng.uniform(0.35, 1.0) + rng.uniform(1.0, 20.0)
            clock = t
        return np.asarray(tracks, dtype=np.int64), np.floor(np.asarray(times, dtype=np.float64))

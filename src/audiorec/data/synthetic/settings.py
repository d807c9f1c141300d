"""The generator's knobs, mirrored one to one by `$defs/synthetic` in schemas/config.schema.yaml.

The workflow passes the schema-validated slice of the config; library users and tests may
pass a partial mapping, so the defaults live here too (tests/unit/test_synthetic_settings.py
checks that both places agree). Every knob is explained in docs/synthetic.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .genres import GENRE_NAMES

AUDIO_FORMATS = ("mp3", "wav", "flac")


class SettingsError(ValueError):
    """A synthetic-dataset setting is out of range; the message names the key and the fix."""


def _default_genres() -> list[str]:
    return list(GENRE_NAMES)


@dataclass(frozen=True)
class SyntheticSettings:
    """Size, audio and behaviour knobs of one synthetic dataset (see docs/synthetic.md)."""

    seed: int = 0
    # --- size ---
    n_tracks: int = 1000
    n_users: int = 1500
    events_per_user: float = 80.0
    tracks_per_artist: float = 8.0
    # --- audio ---
    clip_seconds: float = 10.0
    sample_rate: int = 22050
    audio_format: str = "mp3"
    genres: list[str] = field(default_factory=_default_genres)
    # --- time line ---
    start_date: str = "2019-01-01"
    end_date: str = "2020-03-20"
    cold_start_date: str = "2020-02-20"
    # --- catalogue dynamics ---
    cold_item_share: float = 0.05
    new_release_share: float = 0.15
    popularity_sigma: float = 1.2
    trend_sigma: float = 0.8
    n_scenes: int = 12
    # --- users ---
    cold_user_share: float = 0.04
    late_user_share: float = 0.15
    churn_share: float = 0.1
    activity_sigma: float = 0.9
    # --- taste and behaviour ---
    audible_share: float = 0.6
    taste_concentration: float = 0.5
    attribute_taste: float = 1.0
    taste_drift: float = 0.3
    repeat_share: float = 0.3
    artist_continue: float = 0.2
    album_session_share: float = 0.25
    session_length: float = 6.0

    # --- construction ---

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> SyntheticSettings:
        """Settings from a config slice; unknown keys are an error (a typo would otherwise be ignored)."""
        values = dict(values or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SettingsError(
                f"unknown synthetic dataset setting(s) {unknown}; known settings: {sorted(known)} "
                "(see docs/synthetic.md)."
            )
        if "genres" in values:
            values["genres"] = list(values["genres"])
        settings = cls(**values)
        settings.check()
        return settings

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # --- derived values ---

    @property
    def start(self) -> dt.datetime:
        return _parse_date("start_date", self.start_date)

    @property
    def end(self) -> dt.datetime:
        """Exclusive end: the first second after `end_date`."""
        return _parse_date("end_date", self.end_date) + dt.timedelta(days=1)

    @property
    def cold_start(self) -> dt.datetime:
        return _parse_date("cold_start_date", self.cold_start_date)

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))

    # --- validation ---

    def check(self) -> None:
        """Raise SettingsError naming the first knob that is out of range."""

        def need(ok: bool, key: str, what: str) -> None:
            if not ok:
                raise SettingsError(
                    f"synthetic dataset setting `{key}` = {getattr(self, key)!r}: {what}. "
                    "Fix it under datasets.<name>.synthetic in config.yaml."
                )

        need(isinstance(self.seed, int) and self.seed >= 0, "seed", "must be an integer >= 0")
        need(self.n_tracks >= len(self.genres), "n_tracks", "needs at least one track per genre")
        need(self.n_users >= 1, "n_users", "must be >= 1")
        need(self.events_per_user >= 1, "events_per_user", "must be >= 1")
        need(self.tracks_per_artist >= 1, "tracks_per_artist", "must be >= 1")
        need(1.0 <= self.clip_seconds <= 30.0, "clip_seconds", "must be between 1 and 30 seconds")
        need(8000 <= self.sample_rate <= 48000, "sample_rate", "must be between 8000 and 48000 Hz")
        need(self.audio_format in AUDIO_FORMATS, "audio_format", f"must be one of {AUDIO_FORMATS}")
        need(
            self.audio_format != "mp3" or self.sample_rate in (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
            "sample_rate",
            "is not a rate MP3 supports (use 16000, 22050, 24000, 44100 or 48000, or audio_format wav/flac)",
        )
        unknown = [g for g in self.genres if g not in GENRE_NAMES]
        need(not unknown, "genres", f"unknown genre(s) {unknown}; known: {list(GENRE_NAMES)}")
        need(len(set(self.genres)) == len(self.genres) >= 2, "genres", "needs at least two distinct genres")
        need(self.start < self.cold_start < self.end, "cold_start_date", "must lie between start_date and end_date")
        need((self.end - self.cold_start).days >= 7, "cold_start_date",
             "must be at least a week before end_date, so that cold tracks and users get listens")
        need((self.cold_start - self.start).days >= 60, "start_date", "must be at least 60 days before cold_start_date")
        for key in ("cold_item_share", "new_release_share", "cold_user_share", "late_user_share", "churn_share",
                    "audible_share", "repeat_share", "artist_continue", "album_session_share", "taste_drift"):
            need(0.0 <= getattr(self, key) <= 1.0, key, "must be between 0 and 1")
        need(self.cold_item_share + self.new_release_share <= 0.9, "new_release_share",
             "cold_item_share + new_release_share must leave at least 10% of tracks released before start_date")
        need(self.cold_user_share + self.late_user_share <= 1.0, "late_user_share",
             "cold_user_share + late_user_share must be <= 1")
        need(self.repeat_share + self.artist_continue <= 0.95, "artist_continue",
             "repeat_share + artist_continue must be <= 0.95 so that users still discover tracks")
        for key in ("popularity_sigma", "trend_sigma", "activity_sigma", "attribute_taste"):
            need(0.0 <= getattr(self, key) <= 5.0, key, "must be between 0 and 5")
        need(self.taste_concentration > 0, "taste_concentration", "must be > 0")
        need(self.n_scenes >= 1, "n_scenes", "must be >= 1")
        need(self.session_length >= 1, "session_length", "must be >= 1")


def _parse_date(key: str, value: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(str(value), "%Y-%m-%d")
    except ValueError:
        raise SettingsError(
            f"synthetic dataset setting `{key}` = {value!r} is not a date like 2019-01-01."
        ) from None

"""The `cold_items` split protocol: can a recommender suggest tracks nobody has trained on?

The paper's protocol (`warm`) only asks for tracks of the train window, so it never tests
what content vectors are most often wanted for: tracks without listening history. This
protocol holds tracks out of training entirely and asks val/test for them only:

1. **Cold tracks** = a seeded `cold_item_share` of the tracks heard in the train window
   (chosen by a keyed hash of the track id, so the same seed holds out the same tracks on
   any machine and for any row order) plus, with `include_new_tracks` (default), every
   track first heard in the test period (it has no listen in the train window: the
   synthetic dataset's releases after its cold-start date, new tracks of a real log).
2. **Train** = the train window without any listen of a cold track (`held_out_tracks` in
   stats.csv). A user left with no train listen drops out of train.
3. **Val/test** = test-period (user, track) pairs, then, in order: drop pairs the user had
   played before `test_start` (`known_pairs`, by the same `history` rule as `warm`: a
   held-out track the user already knew is not a discovery); drop pairs of warm tracks
   (`warm_tracks`: this protocol asks only for cold ones); drop users without train listens
   (`cold_users`). The users left are split into val/test exactly as in `warm`.
4. **Catalogue** (`catalogue.parquet`): the train tracks plus *every* cold track, also those
   nobody asked for in val/test, so the candidate pool does not leak which cold tracks
   will be listened to. With `cold_candidates: cold` (default) val/test lists rank the
   cold tracks only (the usual cold-start question: which new tracks suit this user?);
   with `all` they rank warm and cold tracks together (can new tracks compete with the
   catalogue?). The user's train tracks are still never recommended.
"""

from __future__ import annotations

import hashlib
import math
from fractions import Fraction

import polars as pl

from audiorec.data.split import (
    PROTOCOLS,
    CandidateFilter,
    PartAssignment,
    Removal,
    WindowAggregates,
    _track_of,
)

# Keeps the held-out tracks independent of the val/test users drawn with the same seed.
_PERSON = b"cold_items"


def held_out_tracks(track_ids: pl.Series, share: float, seed: int) -> pl.Series:
    """A seeded random `share` of `track_ids` (floor(share x n) of the distinct ids), sorted.

    Tracks are ranked by a BLAKE2b hash of the id keyed with the seed, like the val/test
    user split: it depends on nothing but the ids and the seed."""
    ids = sorted(set(track_ids.to_list()))
    key = seed.to_bytes(8, "big")

    def rank(track: str) -> bytes:
        return hashlib.blake2b(track.encode("utf-8"), digest_size=16, key=key, person=_PERSON).digest()

    n = math.floor(Fraction(repr(float(share))) * len(ids))
    chosen = sorted(sorted(ids, key=lambda t: (rank(t), t))[:n])
    return pl.Series("track_id", chosen, dtype=pl.String)


def cold_items_protocol(windows: WindowAggregates) -> PartAssignment:
    """Hold tracks out of train; val/test = new-to-user test-period pairs of those tracks."""
    settings = windows.settings
    window = windows.train
    removed: list[Removal] = []

    window_tracks = window.select(_track_of(pl.col("key")).unique().sort())["key"]
    window_ids = windows.tracks.decode(window_tracks)
    chosen = held_out_tracks(window_ids, settings.cold_item_share, settings.seed)
    held = window_tracks.filter(window_ids.is_in(chosen.implode()))
    cold = held
    if settings.include_new_tracks:
        asked_tracks = windows.test_window.select(_track_of(pl.col("key")).unique().sort())["key"]
        new = asked_tracks.filter(~asked_tracks.is_in(window_tracks.implode()))
        cold = pl.concat([held, new])

    in_held = _track_of(pl.col("key")).is_in(held.implode())
    removed.append(Removal("held_out_tracks", "train_window", window.filter(in_held)))
    train = window.filter(~in_held)

    # Known pairs against the whole train window (held-out listens included) and the history.
    pairs = CandidateFilter(windows.test_window, removed)
    pairs.drop_known_pairs(window.get_column("key"), windows.history)
    pairs.apply("warm_tracks", _track_of(pl.col("key")).is_in(cold.implode()))
    pairs.keep_train_users(train)
    val, test = pairs.split_users(windows)
    return PartAssignment(
        train=train,
        val=val,
        test=test,
        removed=removed,
        cold_tracks=cold.alias("track"),
        warm_candidates=settings.cold_candidates == "all",
    )


PROTOCOLS["cold_items"] = cold_items_protocol

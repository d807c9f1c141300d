"""The temporal train/validation/test split of a listening log (Tamm & Aljanaki 2024, §2.3).

Protocol (`protocol: warm`, the paper's; `temporal` is accepted as its older name):

* train: every listen in the `train_months` calendar months before `test_start`,
  i.e. in [train_start, test_start);
* test period: every listen from `test_start` on (before `test_end` when set), keeping
  only (user, track) pairs the user had not played before `test_start`, and only users
  and tracks that occur in train;
* the users left in the test period are split at random, seeded, into validation
  (`val_share` of them) and test.

"Had not played before" is, by default, the paper's wording: at any time in the log
before `test_start` (`history: all`). The published code compared with the train window
only (`history: train_window`), which keeps pairs last played more than `train_months`
ago; both are offered, the paper's is the default.

Each part has one row per (user, track): `timestamp` is the first listen inside that
part's window and `plays` the number of listens inside it. Rows before `drop_before`
(the real log has a corrupt 1970 row) are dropped before anything else, so they count
neither as listens nor as history.

The log is read once, block by block: ids become dense integers, each block is reduced
to per-pair aggregates of the two windows (small: the train window of Music4All-Onion
has ~5 M pairs) and, for `history: all`, to the set of pairs heard before the train
window (8 bytes per pair). Everything after the read works on those aggregates.

A second protocol plugs in at `PROTOCOLS`: it receives the same window aggregates and
returns the three parts and the filters it applied (see `PartAssignment`), so reading,
aggregation, output and stats stay shared. `cold_items` (audiorec.data.split_cold) holds a
seeded share of tracks out of train and asks val/test for them only.

Besides the parts, every split lists its catalogue (`catalogue.parquet`): the tracks the
recommenders rank, which are cold (held out of train) and which val/test lists may contain.
"""

from __future__ import annotations

import calendar
import hashlib
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from audiorec.data.listening_log import (
    DEFAULT_BLOCK_BYTES,
    DEFAULT_TIMESTAMP_FORMAT,
    MALFORMED_REASONS,
    ReadCounts,
    read_log,
)
from audiorec.io import write_csv, write_parquet

log = logging.getLogger(__name__)

PARTS = ("train", "val", "test")
PART_SCHEMA = {"user_id": pl.String, "track_id": pl.String, "timestamp": pl.Datetime("us"), "plays": pl.Int64}
STATS_SCHEMA = {
    "stage": pl.String,
    "name": pl.String,
    "listens": pl.Int64,
    "interactions": pl.Int64,
    "users": pl.Int64,
    "items": pl.Int64,
}
History = Literal["all", "train_window"]
CATALOGUE_SCHEMA = {"track_id": pl.String, "cold": pl.Boolean, "candidate": pl.Boolean}
KNOWN_SCHEMA = {"user_id": pl.String, "track_id": pl.String}
# The paper's protocol and the name it had before `cold_items` joined it.
WARM_PROTOCOLS = ("warm", "temporal")


class SplitConfigError(ValueError):
    """A split setting is invalid; the message names the key and the fix."""


class EmptySplitError(ValueError):
    """A part came out empty: the windows do not match the log's time range."""


# --- settings ---


def _parse_instant(value: Any, key: str) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        for fmt in ("%Y-%m-%d", "%Y-%m-%d %H:%M:%S"):
            try:
                return datetime.strptime(value, fmt)
            except ValueError:
                pass
    raise SplitConfigError(
        f"split setting `{key}`: {value!r} is not a date; write it as 'YYYY-MM-DD' or 'YYYY-MM-DD HH:MM:SS'."
    )


def months_before(instant: datetime, months: int) -> datetime:
    """`instant` moved back by calendar months (a missing day clamps to the month's end)."""
    index = instant.year * 12 + (instant.month - 1) - months
    year, month = divmod(index, 12)
    day = min(instant.day, calendar.monthrange(year, month + 1)[1])
    return instant.replace(year=year, month=month + 1, day=day)


@dataclass(frozen=True)
class SplitSettings:
    """One dataset's `split:` settings (schemas/config.schema.yaml `$defs/split` documents each)."""

    protocol: str = "warm"
    test_start: datetime = datetime(2020, 2, 20)
    train_months: int = 12
    test_end: datetime | None = None
    val_share: float = 0.5
    seed: int = 0
    history: History = "all"
    drop_before: datetime = datetime(2000, 1, 1)
    malformed_rows: Literal["error", "skip"] = "error"
    timestamp_format: str = DEFAULT_TIMESTAMP_FORMAT
    # protocol cold_items only (audiorec.data.split_cold, docs/beyond.md)
    cold_item_share: float = 0.1
    include_new_tracks: bool = True
    cold_candidates: Literal["cold", "all"] = "cold"

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None, where: str = "split") -> SplitSettings:
        """Settings from a config mapping; unknown keys and bad values raise naming `where`.key."""
        config = dict(config or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        try:
            if unknown:
                raise SplitConfigError(
                    f"unknown split setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}."
                )
            for key in ("test_start", "drop_before"):
                if key in config:
                    config[key] = _parse_instant(config[key], key)
            if config.get("test_end") is not None:
                config["test_end"] = _parse_instant(config["test_end"], "test_end")
            settings = cls(**config)
            settings.validate()
        except SplitConfigError as exc:
            raise SplitConfigError(f"{where}: {exc}") from None
        return settings

    def validate(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise SplitConfigError(f"split setting `protocol`: {self.protocol!r}; known: {', '.join(PROTOCOLS)}.")
        if not isinstance(self.train_months, int) or self.train_months < 1:
            raise SplitConfigError(
                f"split setting `train_months` must be a whole number >= 1, not {self.train_months!r}."
            )
        if not 0 < float(self.val_share) < 1:
            raise SplitConfigError(
                f"split setting `val_share` must lie strictly between 0 and 1, not {self.val_share!r}."
            )
        if not isinstance(self.seed, int) or self.seed < 0:
            raise SplitConfigError(f"split setting `seed` must be a whole number >= 0, not {self.seed!r}.")
        if self.history not in ("all", "train_window"):
            raise SplitConfigError(f"split setting `history` must be 'all' or 'train_window', not {self.history!r}.")
        if self.malformed_rows not in ("error", "skip"):
            raise SplitConfigError(
                f"split setting `malformed_rows` must be 'error' or 'skip', not {self.malformed_rows!r}."
            )
        if self.test_end is not None and self.test_end <= self.test_start:
            raise SplitConfigError(
                f"split setting `test_end` ({self.test_end}) must be after `test_start` ({self.test_start})."
            )
        if not isinstance(self.cold_item_share, (int, float)) or isinstance(self.cold_item_share, bool) or not (
            0 <= self.cold_item_share < 1
        ):
            raise SplitConfigError(
                f"split setting `cold_item_share` must lie in [0, 1), not {self.cold_item_share!r}."
            )
        if not isinstance(self.include_new_tracks, bool):
            raise SplitConfigError(
                f"split setting `include_new_tracks` must be true or false, not {self.include_new_tracks!r}."
            )
        if self.cold_candidates not in ("cold", "all"):
            raise SplitConfigError(
                f"split setting `cold_candidates` must be 'cold' or 'all', not {self.cold_candidates!r}."
            )
        if self.protocol == "cold_items" and self.cold_item_share == 0 and not self.include_new_tracks:
            raise SplitConfigError(
                "split setting `protocol: cold_items` with `cold_item_share: 0` and `include_new_tracks: false` "
                "holds no track out; raise `cold_item_share` or set `include_new_tracks: true`."
            )
        if self.drop_before > self.train_start:
            raise SplitConfigError(
                f"split setting `drop_before` ({self.drop_before}) is after the train window's start "
                f"({self.train_start}); it would cut into the train window. Move it earlier."
            )

    @property
    def train_start(self) -> datetime:
        return months_before(self.test_start, self.train_months)


# --- ids and per-pair aggregates, built block by block ---


class IdIndex:
    """Strings to dense UInt32 codes, growing as new ids appear; codes never change."""

    def __init__(self) -> None:
        self._ids = pl.Series("id", [], dtype=pl.String)
        self._table = pl.DataFrame(schema={"id": pl.String, "code": pl.UInt32})

    def __len__(self) -> int:
        return self._ids.len()

    def encode(self, frame: pl.DataFrame, column: str, code: str) -> pl.DataFrame:
        """`frame` with `column` replaced by its codes in `code` (row order not kept).

        A column in long runs (the real log is grouped by user) is encoded run by run,
        which avoids a join that would also copy the frame's other string columns.
        """
        ids = frame.get_column(column)
        sample = ids.head(4096)
        if sample.len() >= 64 and (sample.rle_id().max() or 0) * 8 < sample.len():  # type: ignore[operator]
            runs = ids.rle().struct.unnest()
            runs = runs.select(pl.col("value").alias(column), "len").with_row_index("run")
            values = self.encode(runs, column, code).sort("run")  # the join does not keep order
            codes = np.repeat(values.get_column(code).to_numpy(), values.get_column("len").to_numpy())
            return frame.drop(column).with_columns(pl.Series(code, codes, dtype=pl.UInt32))
        table = self._table.rename({"id": column, "code": code})
        joined = frame.join(table, on=column, how="left")
        if joined.get_column(code).null_count():
            missing = joined.filter(pl.col(code).is_null())
            new = missing.get_column(column).unique(maintain_order=True)
            start = len(self)
            added = pl.DataFrame(
                {"id": new, "code": pl.int_range(start, start + new.len(), dtype=pl.UInt32, eager=True)}
            )
            self._ids = pl.concat([self._ids, new.rename("id")])
            self._table = pl.concat([self._table, added])
            fixed = missing.drop(code).join(added.rename({"id": column, "code": code}), on=column, how="inner")
            joined = pl.concat([joined.filter(pl.col(code).is_not_null()), fixed.select(joined.columns)])
        return joined.drop(column)

    def decode(self, codes: pl.Series) -> pl.Series:
        self._ids = self._ids.rechunk()
        return self._ids.gather(codes)

    def ranks(self) -> pl.Series:
        """rank[code] = the id's position in sorted order (sorting codes by it sorts the ids)."""
        order = self._ids.arg_sort()
        ranks = np.empty(len(self), dtype=np.uint32)
        ranks[order.to_numpy()] = np.arange(len(self), dtype=np.uint32)
        return pl.Series(ranks)


class _Presence:
    """Which users/tracks occur at a stage of the filters (for 'users removed by' counts)."""

    def __init__(self) -> None:
        self.flags = np.zeros(0, dtype=bool)

    def mark(self, codes: pl.Series, size: int) -> None:
        if len(self.flags) < size:
            self.flags = np.concatenate([self.flags, np.zeros(max(size - len(self.flags), size // 2), dtype=bool)])
        self.flags[codes.to_numpy()] = True

    def count(self) -> int:
        return int(self.flags.sum())


# Partial aggregates are merged once they hold this many rows (memory vs. merge work).
PAIR_TOTALS_COMPACT_ROWS = 20_000_000
KEY_SET_COMPACT_ROWS = 50_000_000


@dataclass
class _PairTotals:
    """Per-pair first listen and play count over one time window, merged across blocks."""

    compact_rows: int = field(default_factory=lambda: PAIR_TOTALS_COMPACT_ROWS)
    parts: list[pl.DataFrame] = field(default_factory=list)
    rows: int = 0

    def add(self, frame: pl.DataFrame) -> None:
        self.parts.append(frame)
        self.rows += frame.height
        if self.rows > self.compact_rows and len(self.parts) > 1:
            self._compact()
            self.compact_rows = max(self.compact_rows, 2 * self.rows)

    def _compact(self) -> None:
        merged = pl.concat(self.parts).group_by("key").agg(pl.col("first").min(), pl.col("plays").sum())
        self.parts, self.rows = [merged], merged.height

    def result(self) -> pl.DataFrame:
        if not self.parts:
            return pl.DataFrame(schema={"key": pl.UInt64, "first": pl.Datetime("us"), "plays": pl.Int64})
        if len(self.parts) > 1:
            self._compact()
        return self.parts[0]


@dataclass
class _KeySet:
    """Distinct pair keys (user code << 32 | track code), deduplicated as they accumulate."""

    compact_rows: int = field(default_factory=lambda: KEY_SET_COMPACT_ROWS)
    parts: list[pl.Series] = field(default_factory=list)
    rows: int = 0

    def add(self, keys: pl.Series) -> None:
        self.parts.append(keys)
        self.rows += keys.len()
        if self.rows > self.compact_rows and len(self.parts) > 1:
            self._compact()
            self.compact_rows = max(self.compact_rows, 2 * self.rows)

    def _compact(self) -> None:
        merged = pl.concat(self.parts).unique()
        self.parts, self.rows = [merged], merged.len()

    def result(self) -> pl.Series:
        if not self.parts:
            return pl.Series("key", [], dtype=pl.UInt64)
        if len(self.parts) > 1:
            self._compact()
        return self.parts[0]


PAIR_KEY = (pl.col("user").cast(pl.UInt64) * (1 << 32) + pl.col("track").cast(pl.UInt64)).alias("key")


def _pair_totals(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.group_by(PAIR_KEY).agg(
        pl.col("timestamp").min().alias("first"), pl.len().cast(pl.Int64).alias("plays")
    )


@dataclass
class WindowAggregates:
    """What the read of the log leaves: per-pair totals of both windows, history, counts.

    `train` and `test_window` have columns key (UInt64), first (datetime), plays (Int64);
    `history` holds the keys of pairs heard in [drop_before, train_start) (only for
    `history: all`). The counters feed stats.csv.
    """

    settings: SplitSettings
    users: IdIndex
    tracks: IdIndex
    train: pl.DataFrame
    test_window: pl.DataFrame
    history: pl.Series | None
    read: ReadCounts
    listens: dict[str, int]
    presence: dict[str, tuple[int, int]]  # stage -> (users, tracks) present
    first_timestamp: datetime | None
    last_timestamp: datetime | None


def aggregate_windows(
    path: str | os.PathLike[str],
    settings: SplitSettings,
    *,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    on_block: Callable[[ReadCounts], None] | None = None,
    where: str = "split",
) -> WindowAggregates:
    """Read the log once and reduce it to the windows' per-pair totals (bounded memory)."""
    users, tracks = IdIndex(), IdIndex()
    stages = ("valid", "kept", "from_train_start")
    seen_users = {s: _Presence() for s in stages}
    seen_tracks = {s: _Presence() for s in stages}
    train, test_window, history = _PairTotals(), _PairTotals(), _KeySet()
    listens = dict.fromkeys(("valid", "too_old", "before_train_window", "after_test_end"), 0)
    first_ts: datetime | None = None
    last_ts: datetime | None = None
    counts = ReadCounts()
    drop_before, train_start, test_start, test_end = (
        settings.drop_before,
        settings.train_start,
        settings.test_start,
        settings.test_end,
    )
    for block in read_log(
        path,
        timestamp_format=settings.timestamp_format,
        malformed_rows=settings.malformed_rows,
        block_bytes=block_bytes,
        counts=counts,
        setting_hint=f"set `{where}.malformed_rows: skip`",
    ):
        if block.height:
            frame = tracks.encode(users.encode(block, "user_id", "user"), "track_id", "track")
            listens["valid"] += frame.height
            span = frame.select(pl.col("timestamp").min().alias("lo"), pl.col("timestamp").max().alias("hi")).row(0)
            first_ts = span[0] if first_ts is None else min(first_ts, span[0])
            last_ts = span[1] if last_ts is None else max(last_ts, span[1])
            _mark(seen_users["valid"], seen_tracks["valid"], frame, users, tracks)

            kept = frame.filter(pl.col("timestamp") >= drop_before)
            listens["too_old"] += frame.height - kept.height
            _mark(seen_users["kept"], seen_tracks["kept"], kept, users, tracks)

            recent = kept.filter(pl.col("timestamp") >= train_start)
            listens["before_train_window"] += kept.height - recent.height
            _mark(seen_users["from_train_start"], seen_tracks["from_train_start"], recent, users, tracks)

            in_train = recent.filter(pl.col("timestamp") < test_start)
            in_test = recent.filter(pl.col("timestamp") >= test_start)
            if test_end is not None:
                n = in_test.height
                in_test = in_test.filter(pl.col("timestamp") < test_end)
                listens["after_test_end"] += n - in_test.height
            train.add(_pair_totals(in_train))
            test_window.add(_pair_totals(in_test))
            if settings.history == "all":
                history.add(kept.filter(pl.col("timestamp") < train_start).select(PAIR_KEY.unique())["key"])
        if on_block is not None:
            on_block(counts)
    return WindowAggregates(
        settings=settings,
        users=users,
        tracks=tracks,
        train=train.result(),
        test_window=test_window.result(),
        history=history.result() if settings.history == "all" else None,
        read=counts,
        listens=listens,
        presence={s: (seen_users[s].count(), seen_tracks[s].count()) for s in stages},
        first_timestamp=first_ts,
        last_timestamp=last_ts,
    )


def _mark(pu: _Presence, pt: _Presence, frame: pl.DataFrame, users: IdIndex, tracks: IdIndex) -> None:
    pu.mark(frame.get_column("user"), len(users))
    pt.mark(frame.get_column("track"), len(tracks))


# --- protocols: window aggregates -> parts ---


@dataclass(frozen=True)
class Removal:
    """One filter step of a protocol: its name, the window it filtered, the pairs it removed."""

    name: str
    window: Literal["train_window", "test_window"]
    pairs: pl.DataFrame  # pair totals (key, first, plays)


@dataclass
class PartAssignment:
    """A protocol's result: the parts as pair totals (key, first, plays) and its filter steps.

    `removed` lists the filters in the order applied, per window; stats.csv reports each
    as what it removed from that window. `temporal` filters only the test window; a
    protocol that holds tracks out of train (cold items) also filters the train window.
    """

    train: pl.DataFrame
    val: pl.DataFrame
    test: pl.DataFrame
    removed: list[Removal]
    # Track codes held out of train (cold items); None for protocols without them.
    cold_tracks: pl.Series | None = None
    # Whether val/test lists may contain warm (train) tracks too, or only the cold ones.
    warm_candidates: bool = True


def _user_of(key: pl.Expr) -> pl.Expr:
    return (key // (1 << 32)).cast(pl.UInt32)


def _track_of(key: pl.Expr) -> pl.Expr:
    return (key % (1 << 32)).cast(pl.UInt32)


def split_users(user_ids: pl.Series, val_share: float, seed: int) -> tuple[pl.Series, pl.Series]:
    """Seeded random split of users into (val, test), independent of input order and platform.

    Users are ranked by a keyed BLAKE2b hash of (seed, user_id), a seeded random
    permutation that depends on nothing but the ids and the seed (no hash
    randomisation, no row order, no RNG stream that a library version may change).
    The first floor(val_share x n) users go to validation, the rest to test, as the
    reference code's `train_test_split(test_size=0.5)` gives test the odd user.
    """
    ids = sorted(set(user_ids.to_list()))
    key = seed.to_bytes(8, "big")

    def rank(user: str) -> bytes:
        return hashlib.blake2b(user.encode("utf-8"), digest_size=16, key=key).digest()

    ordered = sorted(ids, key=lambda u: (rank(u), u))
    n_val = math.floor(Fraction(repr(float(val_share))) * len(ordered))
    return pl.Series("user_id", ordered[:n_val], dtype=pl.String), pl.Series(
        "user_id", ordered[n_val:], dtype=pl.String
    )


class CandidateFilter:
    """The test-window pairs narrowed filter by filter; every dropped row is kept as a
    Removal so that stats.csv can say which filter removed what."""

    def __init__(self, candidates: pl.DataFrame, removed: list[Removal]) -> None:
        self.candidates = candidates
        self.removed = removed

    def apply(self, name: str, keep: pl.Expr) -> None:
        flags = self.candidates.select(keep.alias("keep"))["keep"]
        self.removed.append(Removal(name, "test_window", self.candidates.filter(~flags)))
        self.candidates = self.candidates.filter(flags)

    def drop_known_pairs(self, heard: pl.Series, history: pl.Series | None) -> None:
        """Pairs heard before (in the train window's `heard` keys or the earlier `history`):
        look the (few) test-period pairs up in the (many) earlier ones, so the hash set is
        built on the small side."""
        asked = self.candidates.get_column("key").implode()
        earlier = [heard] + ([history] if history is not None else [])
        known = pl.concat([keys.filter(keys.is_in(asked)) for keys in earlier])
        self.apply("known_pairs", ~pl.col("key").is_in(known.implode()))

    def keep_train_users(self, train: pl.DataFrame) -> None:
        train_users = train.select(_user_of(pl.col("key")).unique())["key"]
        self.apply("cold_users", _user_of(pl.col("key")).is_in(train_users.implode()))

    def split_users(self, windows: WindowAggregates) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(val, test): the remaining pairs of a seeded `val_share` of their users, and the rest."""
        codes = self.candidates.select(_user_of(pl.col("key")).unique())["key"]
        ids = windows.users.decode(codes)
        val_users, _ = split_users(ids, windows.settings.val_share, windows.settings.seed)
        val_codes = codes.filter(ids.is_in(val_users.implode()))
        in_val = _user_of(pl.col("key")).is_in(val_codes.implode())
        return self.candidates.filter(in_val), self.candidates.filter(~in_val)


def temporal_protocol(windows: WindowAggregates) -> PartAssignment:
    """The paper's protocol: new-to-user pairs of users and tracks known from train."""
    train = windows.train
    removed: list[Removal] = []
    pairs = CandidateFilter(windows.test_window, removed)
    pairs.drop_known_pairs(train.get_column("key"), windows.history)
    pairs.keep_train_users(train)
    train_tracks = train.select(_track_of(pl.col("key")).unique())["key"]
    pairs.apply("cold_items", _track_of(pl.col("key")).is_in(train_tracks.implode()))
    val, test = pairs.split_users(windows)
    return PartAssignment(train=train, val=val, test=test, removed=removed)


# A protocol turns the window aggregates into parts. `cold_items` registers itself here
# (audiorec.data.split_cold, imported at the end of this module).
PROTOCOLS: dict[str, Callable[[WindowAggregates], PartAssignment]] = {
    "warm": temporal_protocol,
    "temporal": temporal_protocol,
}


# --- the split: parts as strings, stats, writing ---


@dataclass
class SplitResult:
    """The three parts as the contract's rows (docs/split.md) and stats.csv's frame."""

    train: pl.DataFrame
    val: pl.DataFrame
    test: pl.DataFrame
    stats: pl.DataFrame
    catalogue: pl.DataFrame | None = None  # CATALOGUE_SCHEMA, sorted by track_id
    known: pl.DataFrame | None = None  # KNOWN_SCHEMA: what ranking excludes (_known_pairs)


def _catalogue(parts: PartAssignment, windows: WindowAggregates) -> pl.DataFrame:
    """catalogue.parquet: every track of train, then the cold ones, flagged (sorted by id)."""
    warm = parts.train.select(_track_of(pl.col("key")).unique().alias("track"))["track"]
    cold = parts.cold_tracks if parts.cold_tracks is not None else pl.Series("track", [], dtype=pl.UInt32)
    frame = pl.DataFrame(
        {
            "track_id": pl.concat([windows.tracks.decode(warm), windows.tracks.decode(cold)]),
            "cold": [False] * warm.len() + [True] * cold.len(),
        },
        schema={"track_id": pl.String, "cold": pl.Boolean},
    )
    if frame["track_id"].is_duplicated().any():
        raise AssertionError("a protocol listed a track both in train and among the cold tracks")
    return frame.with_columns(candidate=pl.col("cold") | parts.warm_candidates).sort("track_id")


def _known_pairs(parts: PartAssignment, windows: WindowAggregates) -> pl.DataFrame:
    """known.parquet: every (user, track) the split treats as already heard by a val/test user,
    so that ranking removes exactly what the split removed from val/test (issue: one rule).

    That is the whole train window (held-out tracks' listens included) plus, with
    `history: all`, every earlier listen; limited to the evaluated users and to catalogue
    tracks (a pair of a track nobody can recommend changes no ranking).
    """
    asked_users = pl.concat([parts.val, parts.test]).select(_user_of(pl.col("key")).unique())["key"]
    catalogue = parts.train.select(_track_of(pl.col("key")).unique())["key"]
    if parts.cold_tracks is not None:
        catalogue = pl.concat([catalogue, parts.cold_tracks.cast(pl.UInt32)])
    earlier = [windows.train.get_column("key")] + ([windows.history] if windows.history is not None else [])
    keep = _user_of(pl.col("key")).is_in(asked_users.implode()) & _track_of(pl.col("key")).is_in(catalogue.implode())
    keys = pl.concat([pl.DataFrame({"key": k}).filter(keep) for k in earlier]).unique()
    pairs = keys.with_columns(user=_user_of(pl.col("key")), track=_track_of(pl.col("key")))
    pairs = pairs.with_columns(
        user_rank=windows.users.ranks().gather(pairs.get_column("user")),
        track_rank=windows.tracks.ranks().gather(pairs.get_column("track")),
    ).sort("user_rank", "track_rank")
    return pl.DataFrame(
        {
            "user_id": windows.users.decode(pairs.get_column("user")),
            "track_id": windows.tracks.decode(pairs.get_column("track")),
        },
        schema=KNOWN_SCHEMA,
    )


def _to_rows(pairs: pl.DataFrame, windows: WindowAggregates) -> pl.DataFrame:
    """Pair totals as the contract's rows, sorted by user, first listen and track.

    Sorting on the ids' ranks gives the same order as sorting the strings, much faster.
    """
    pairs = pairs.with_columns(user=_user_of(pl.col("key")), track=_track_of(pl.col("key")))
    pairs = pairs.with_columns(
        user_rank=windows.users.ranks().gather(pairs.get_column("user")),
        track_rank=windows.tracks.ranks().gather(pairs.get_column("track")),
    ).sort("user_rank", "first", "track_rank")
    return pl.DataFrame(
        {
            "user_id": windows.users.decode(pairs.get_column("user")),
            "track_id": windows.tracks.decode(pairs.get_column("track")),
            "timestamp": pairs.get_column("first"),
            "plays": pairs.get_column("plays").cast(pl.Int64),
        },
        schema=PART_SCHEMA,
    )


def _totals(pairs: pl.DataFrame) -> dict[str, int]:
    row = pairs.select(
        pl.col("plays").sum().cast(pl.Int64).alias("listens"),
        pl.len().cast(pl.Int64).alias("interactions"),
        _user_of(pl.col("key")).n_unique().cast(pl.Int64).alias("users"),
        _track_of(pl.col("key")).n_unique().cast(pl.Int64).alias("items"),
    ).row(0, named=True)
    row["listens"] = row["listens"] or 0
    return row


def _stats(windows: WindowAggregates, parts: PartAssignment) -> pl.DataFrame:
    """stats.csv: the input, every filter's removals in order, the parts (docs/split.md)."""
    rows: list[dict[str, Any]] = []

    def add(
        stage: str,
        name: str,
        listens: int | None,
        interactions: int | None = None,
        users: int | None = None,
        items: int | None = None,
    ) -> None:
        rows.append(
            {
                "stage": stage,
                "name": name,
                "listens": listens,
                "interactions": interactions,
                "users": users,
                "items": items,
            }
        )

    read = windows.read
    n_users, n_tracks = windows.presence["valid"]
    add("input", "log", read.rows, None, n_users, n_tracks)
    for reason in MALFORMED_REASONS:
        add("removed", f"malformed_{reason}", read.malformed.get(reason, 0))
    kept_users, kept_tracks = windows.presence["kept"]
    add("removed", "too_old", windows.listens["too_old"], None, n_users - kept_users, n_tracks - kept_tracks)
    recent_users, recent_tracks = windows.presence["from_train_start"]
    add(
        "removed",
        "before_train_window",
        windows.listens["before_train_window"],
        None,
        kept_users - recent_users,
        kept_tracks - recent_tracks,
    )
    windowed = pl.concat([windows.train.select("key"), windows.test_window.select("key")])
    w = windowed.select(
        _user_of(pl.col("key")).n_unique().alias("u"), _track_of(pl.col("key")).n_unique().alias("t")
    ).row(0)
    add("removed", "after_test_end", windows.listens["after_test_end"], None, recent_users - w[0], recent_tracks - w[1])
    for window in ("train_window", "test_window"):
        remaining = windows.train if window == "train_window" else windows.test_window
        before = _totals(remaining)
        add("window", window, **before)
        for step in (r for r in parts.removed if r.window == window):
            remaining = remaining.join(step.pairs.select("key"), on="key", how="anti")
            after = _totals(remaining)
            add(
                "removed",
                step.name,
                step.pairs.get_column("plays").sum() or 0,
                step.pairs.height,
                before["users"] - after["users"],
                before["items"] - after["items"],
            )
            before = after
    for part in PARTS:
        add("part", part, **_totals(getattr(parts, part)))
    if parts.cold_tracks is not None:
        # the catalogue of a cold-item split: how many tracks are held out, and how many asked for
        asked = pl.concat([parts.val, parts.test]).select(_track_of(pl.col("key")).n_unique()).item()
        warm = parts.train.select(_track_of(pl.col("key")).n_unique()).item()
        add("catalogue", "warm_tracks", None, None, None, warm)
        add("catalogue", "cold_tracks", None, None, None, parts.cold_tracks.len())
        add("catalogue", "cold_tracks_asked", None, None, None, asked)
    return pl.DataFrame(rows, schema=STATS_SCHEMA)


def split_log(
    path: str | os.PathLike[str],
    settings: SplitSettings,
    *,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    progress: bool = False,
    where: str = "split",
) -> SplitResult:
    """Split a listening log into train/val/test by `settings` (see the module docstring).

    `where` names the settings in messages (e.g. datasets.onion.split); `progress` shows
    a progress bar over the file's bytes on stderr (the rule's log).
    """
    t0 = time.perf_counter()
    bar = _ReadProgress(Path(path)) if progress else None
    try:
        windows = aggregate_windows(
            path, settings, block_bytes=block_bytes, on_block=bar.update if bar else None, where=where
        )
    finally:
        if bar:
            bar.close()
    read_s = time.perf_counter() - t0
    log.info(
        "read %s rows of %s in %.1f s (%.2f M rows/s); valid listens span %s to %s",
        f"{windows.read.rows:,}",
        path,
        read_s,
        windows.read.rows / max(read_s, 1e-9) / 1e6,
        windows.first_timestamp,
        windows.last_timestamp,
    )
    history = (
        f"{windows.history.len():,} heard before the train window"
        if windows.history is not None
        else "no earlier history kept (history: train_window)"
    )
    log.info(
        "pairs: %s in the train window, %s in the test window, %s",
        f"{windows.train.height:,}",
        f"{windows.test_window.height:,}",
        history,
    )
    if windows.read.malformed_total:
        log.warning("skipped %d malformed rows: %s", windows.read.malformed_total, dict(windows.read.malformed))
    parts = PROTOCOLS[settings.protocol](windows)
    _check_not_empty(parts, windows, path)
    result = SplitResult(
        train=_to_rows(parts.train, windows),
        val=_to_rows(parts.val, windows),
        test=_to_rows(parts.test, windows),
        stats=_stats(windows, parts),
        catalogue=_catalogue(parts, windows),
        known=_known_pairs(parts, windows),
    )
    log.info("split done in %.1f s:\n%s", time.perf_counter() - t0, result.stats)
    return result


class _ReadProgress:
    """A progress bar over the bytes of the file on disk (compressed ones for .bz2)."""

    def __init__(self, path: Path) -> None:
        from tqdm.auto import tqdm

        interactive = sys.stderr.isatty()
        self.bar = tqdm(
            total=path.stat().st_size,
            desc=f"reading {path.name}",
            unit="B",
            unit_scale=True,
            file=sys.stderr,
            mininterval=0.5 if interactive else 10.0,
            ascii=not interactive,
        )

    def update(self, counts: ReadCounts) -> None:
        self.bar.update(counts.bytes_read - self.bar.n)
        self.bar.set_postfix_str(f"{counts.rows:,} rows", refresh=False)

    def close(self) -> None:
        self.bar.close()


def _check_not_empty(parts: PartAssignment, windows: WindowAggregates, path: str | os.PathLike[str]) -> None:
    s = windows.settings
    span = (
        f"the log's valid listens span {windows.first_timestamp} to {windows.last_timestamp}"
        if windows.first_timestamp is not None
        else "the log has no valid listens"
    )
    if parts.train.height == 0:
        raise EmptySplitError(
            f"{path}: no listens in the train window [{s.train_start}, {s.test_start}); {span}. "
            f"Set the dataset's split `test_start` (and `train_months`) to fit the log."
        )
    empty = [name for name in ("val", "test") if getattr(parts, name).height == 0]
    if empty:
        held = pl.concat([parts.val, parts.test]).select(_user_of(pl.col("key")).n_unique()).item()
        window = f"[{s.test_start}, {s.test_end or 'end of log'})"
        asked = "tracks of the train window"
        fix = "Move `test_start`/`test_end`, or use a larger log."
        if parts.cold_tracks is not None:
            asked = f"any of the {parts.cold_tracks.len()} cold (held-out) tracks"
            fix = "Raise `cold_item_share`, set `include_new_tracks: true`, move `test_start`/`test_end`, or use a larger log."
        raise EmptySplitError(
            f"{path}: the {' and '.join(empty)} part is empty: {held} user(s) of the train window have "
            f"{asked} new to them in the test period {window} (val_share {s.val_share} "
            f"of them form val, the rest test); {span}. {fix}"
        )


def write_split(
    result: SplitResult,
    train: str | os.PathLike[str],
    val: str | os.PathLike[str],
    test: str | os.PathLike[str],
    stats: str | os.PathLike[str],
    catalogue: str | os.PathLike[str] | None = None,
    known: str | os.PathLike[str] | None = None,
) -> None:
    """Write the parts (Parquet), stats (CSV) and, if asked, the catalogue and the known pairs,
    each atomically."""
    for frame, path in ((result.train, train), (result.val, val), (result.test, test)):
        write_parquet(frame, Path(path))
    write_csv(result.stats, Path(stats))
    if catalogue is not None:
        if result.catalogue is None:
            raise ValueError("this split result has no catalogue to write (split_log builds it)")
        write_parquet(result.catalogue, Path(catalogue))
    if known is not None:
        if result.known is None:
            raise ValueError("this split result has no known pairs to write (split_log builds them)")
        write_parquet(result.known, Path(known))


# Registers the `cold_items` protocol in PROTOCOLS (it builds on the definitions above).
from audiorec.data import split_cold  # noqa: F401

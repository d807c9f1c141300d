"""The temporal split: every rule on hand-built logs, and an independent pandas reference."""

from __future__ import annotations

import bz2
import hashlib
import random
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from split_helpers import pairs, stat

from audiorec.data import split as split_mod
from audiorec.data.listening_log import ListeningLogError
from audiorec.data.split import (
    EmptySplitError,
    SplitConfigError,
    SplitSettings,
    months_before,
    split_log,
    split_users,
    write_split,
)

HEADER = "user_id\ttrack_id\ttimestamp\n"
TEST_START = datetime(2020, 2, 20)
TRAIN_START = datetime(2019, 2, 20)
US = timedelta(microseconds=1)


def ts(x: datetime) -> str:
    return x.strftime("%Y-%m-%d %H:%M:%S")


def write_log(path: Path, rows: list[tuple[str, str, datetime | str]], compress: bool = False) -> Path:
    text = HEADER + "".join(f"{u}\t{t}\t{x if isinstance(x, str) else ts(x)}\n" for u, t, x in rows)
    if compress:
        path = path.with_name(path.name + ".bz2")
        path.write_bytes(bz2.compress(text.encode()))
    else:
        path.write_text(text)
    return path


# A log where each user exercises one rule; `anchor` users keep val and test non-empty and
# make every track of interest known to train.
def rule_log() -> list[tuple[str, str, datetime | str]]:
    d = datetime
    return [
        # anchors: in train with every track, then new tracks in the test period
        ("a1", "t1", d(2019, 6, 1)),
        ("a1", "t2", d(2019, 6, 2)),
        ("a1", "t3", d(2019, 6, 3)),
        ("a1", "t4", d(2019, 6, 4)),
        ("a1", "t5", d(2019, 6, 5)),
        ("a1", "t6", d(2019, 6, 6)),
        ("a2", "t1", d(2019, 7, 1)),
        ("a2", "t2", d(2020, 3, 1)),
        ("a3", "t1", d(2019, 7, 1)),
        ("a3", "t3", d(2020, 3, 1)),
        ("a4", "t1", d(2019, 7, 1)),
        ("a4", "t4", d(2020, 3, 1)),
        # repeat: played in train, again in the test period -> not new
        ("r", "t1", d(2019, 8, 1)),
        ("r", "t2", d(2020, 3, 2)),
        ("r", "t1", d(2020, 3, 3)),
        # old: played only long before the train window -> known under history=all only
        ("o", "t1", d(2019, 8, 1)),
        ("o", "t5", d(2015, 1, 1)),
        ("o", "t5", d(2020, 3, 4)),
        # corrupt: a 1970 listen does not count as history
        ("c", "t1", d(2019, 8, 1)),
        ("c", "t6", "1970-01-01 01:00:00"),
        ("c", "t6", d(2020, 3, 5)),
        # cold user: only in the test period
        ("cu", "t1", d(2020, 3, 6)),
        # cold item: t9 never in train
        ("ci", "t1", d(2019, 8, 1)),
        ("ci", "t9", d(2020, 3, 7)),
        ("ci", "t2", d(2020, 3, 7)),
    ]


@pytest.fixture
def rule_result(tmp_path):
    return split_log(write_log(tmp_path / "log.tsv", rule_log()), SplitSettings())


def test_train_is_the_12_months_before_test_start(rule_result):
    train = rule_result.train
    assert pairs(train) == {("a1", f"t{i}") for i in range(1, 7)} | {
        ("a2", "t1"),
        ("a3", "t1"),
        ("a4", "t1"),
        ("r", "t1"),
        ("o", "t1"),
        ("c", "t1"),
        ("ci", "t1"),
    }
    assert train["plays"].to_list() == [1] * train.height  # test-period replays of r/t1 are not train plays


def test_test_period_keeps_only_new_pairs_of_known_users_and_tracks(rule_result):
    held_out = pairs(rule_result.val) | pairs(rule_result.test)
    assert held_out == {("a2", "t2"), ("a3", "t3"), ("a4", "t4"), ("r", "t2"), ("c", "t6"), ("ci", "t2")}
    assert pairs(rule_result.val).isdisjoint(pairs(rule_result.test))
    val_users, test_users = set(rule_result.val["user_id"]), set(rule_result.test["user_id"])
    assert val_users.isdisjoint(test_users) and len(val_users) == 3 and len(test_users) == 3


def test_history_train_window_is_the_published_code(tmp_path):
    result = split_log(write_log(tmp_path / "log.tsv", rule_log()), SplitSettings(history="train_window"))
    held_out = pairs(result.val) | pairs(result.test)
    assert ("o", "t5") in held_out  # last heard in 2015: new to the published code, known to the paper
    assert ("r", "t1") not in held_out


def history_log() -> list[tuple[str, str, datetime | str]]:
    """rule_log plus `h`, who heard t2 in 2018 (before the train window), heard it again in the
    test month, and has one new track there (so h is evaluated)."""
    d = datetime
    return rule_log() + [
        ("h", "t2", d(2018, 5, 1)),
        ("h", "t1", d(2019, 9, 1)),
        ("h", "t2", d(2020, 3, 8)),
        ("h", "t3", d(2020, 3, 9)),
    ]


def test_known_pairs_are_what_the_split_treats_as_heard(tmp_path):
    """Ranking excludes exactly what the split kept out of val/test as not new: with
    `history: all`, h's 2018 listen of t2 too (else t2 could be recommended and never hit)."""
    result = split_log(write_log(tmp_path / "log.tsv", history_log()), SplitSettings())
    known = pairs(result.known)
    assert ("h", "t2") in known and ("h", "t2") not in pairs(result.val) | pairs(result.test)
    assert ("h", "t1") in known and ("r", "t1") in known and ("c", "t1") in known
    assert ("c", "t6") not in known  # the 1970 row is no history: c/t6 is a test-period target
    evaluated = set(result.val["user_id"]) | set(result.test["user_id"])
    assert {u for u, _ in known} == evaluated  # only users whose lists are ranked
    assert {p for p in pairs(result.train) if p[0] in evaluated} <= known
    out = {name: tmp_path / f"{name}.parquet" for name in ("train", "val", "test", "catalogue", "known")}
    write_split(result, out["train"], out["val"], out["test"], tmp_path / "stats.csv", out["catalogue"], out["known"])
    assert pairs(pl.read_parquet(out["known"])) == known
    published = split_log(write_log(tmp_path / "log.tsv", history_log()), SplitSettings(history="train_window"))
    assert ("h", "t2") in pairs(published.val) | pairs(published.test)  # a target there ...
    assert ("h", "t2") not in pairs(published.known)  # ... so never excluded from ranking


def test_stats_count_every_filter(rule_result):
    r = rule_result
    assert stat(r, "input", "log") == dict(stage="input", name="log", listens=25, interactions=None, users=9, items=7)
    assert stat(r, "removed", "too_old")["listens"] == 1
    assert stat(r, "removed", "too_old")["users"] == 0 and stat(r, "removed", "too_old")["items"] == 0
    assert stat(r, "removed", "before_train_window") == dict(
        stage="removed", name="before_train_window", listens=1, interactions=None, users=0, items=0
    )
    assert stat(r, "removed", "after_test_end")["listens"] == 0
    assert stat(r, "window", "test_window") == dict(
        stage="window", name="test_window", listens=10, interactions=10, users=8, items=7
    )
    # known: r/t1, o/t5; cold user: cu/t1; cold item: ci/t9
    assert stat(r, "removed", "known_pairs") == dict(
        stage="removed", name="known_pairs", listens=2, interactions=2, users=1, items=1
    )
    assert stat(r, "removed", "cold_users") == dict(
        stage="removed", name="cold_users", listens=1, interactions=1, users=1, items=1
    )
    assert stat(r, "removed", "cold_items") == dict(
        stage="removed", name="cold_items", listens=1, interactions=1, users=0, items=1
    )
    for part in ("train", "val", "test"):
        frame = getattr(r, part)
        row = stat(r, "part", part)
        assert row["interactions"] == frame.height
        assert row["users"] == frame["user_id"].n_unique()
        assert row["items"] == frame["track_id"].n_unique()
        assert row["listens"] == frame["plays"].sum()
    assert [n for n in r.stats["name"]] == [
        "log",
        "malformed_columns",
        "malformed_empty_id",
        "malformed_timestamp",
        "malformed_encoding",
        "too_old",
        "before_train_window",
        "after_test_end",
        "train_window",
        "test_window",
        "known_pairs",
        "cold_users",
        "cold_items",
        "train",
        "val",
        "test",
    ]


def test_window_edges_are_half_open(tmp_path):
    rows = [
        ("a", "t_start", TRAIN_START),  # first instant of train: in
        ("a", "t_before", TRAIN_START - timedelta(seconds=1)),  # just before: history only
        ("a", "t_last", TEST_START - timedelta(seconds=1)),  # last second of train: in
        ("a", "t_test", TEST_START),  # exactly test_start: test period, not train
        ("b", "t_start", datetime(2019, 5, 1)),
        ("b", "t_last", datetime(2019, 5, 1)),
        ("b", "t_test", datetime(2019, 5, 1)),
        ("b", "t_before", datetime(2019, 5, 1)),
        ("c", "t_start", datetime(2019, 5, 1)),
        ("c", "t_last", TEST_START),
        ("d", "t_start", datetime(2019, 5, 1)),
        ("d", "t_before", TEST_START + timedelta(days=1)),
    ]
    result = split_log(write_log(tmp_path / "log.tsv", rows), SplitSettings())
    assert pairs(result.train.filter(pl.col("user_id") == "a")) == {("a", "t_start"), ("a", "t_last")}
    held_out = pairs(result.val) | pairs(result.test)
    assert held_out == {("a", "t_test"), ("c", "t_last"), ("d", "t_before")}


def test_test_end_is_exclusive_and_counted(tmp_path):
    rows = [
        ("a", "t1", datetime(2019, 5, 1)),
        ("a", "t2", datetime(2019, 5, 1)),
        ("a", "t3", datetime(2019, 5, 1)),
        ("b", "t1", datetime(2019, 5, 1)),
        ("c", "t1", datetime(2019, 5, 1)),
        ("c", "t2", datetime(2020, 2, 26)),
        ("a", "t2", datetime(2020, 3, 1) - timedelta(seconds=1)),
        ("b", "t2", datetime(2020, 3, 1)),  # exactly test_end: out
        ("b", "t3", datetime(2020, 2, 25)),
        ("a", "t3", datetime(2020, 3, 5)),  # out, and not counted as a later "known" play either
    ]
    settings = SplitSettings.from_config({"test_end": "2020-03-01"})
    result = split_log(write_log(tmp_path / "log.tsv", rows), settings)
    assert pairs(result.val) | pairs(result.test) == {("b", "t3"), ("c", "t2")}  # a/t2 was heard in train
    assert stat(result, "removed", "after_test_end")["listens"] == 2
    assert stat(result, "window", "test_window")["listens"] == 3


def test_plays_and_first_listen_are_per_window(tmp_path):
    rows = [
        ("a", "t1", datetime(2018, 1, 1)),  # before the window: neither train play nor timestamp
        ("a", "t1", datetime(2019, 9, 9)),
        ("a", "t1", datetime(2019, 3, 3)),
        ("a", "t1", datetime(2019, 3, 3)),  # exact duplicate: a second play
        ("a", "t1", datetime(2020, 3, 1)),  # test period: not a train play
        ("a", "t2", datetime(2019, 4, 4)),
        ("b", "t1", datetime(2019, 4, 4)),
        ("b", "t2", datetime(2020, 3, 9)),
        ("b", "t2", datetime(2020, 3, 2)),
        ("c", "t1", datetime(2019, 4, 4)),
        ("c", "t2", datetime(2020, 3, 1)),
    ]
    result = split_log(write_log(tmp_path / "log.tsv", rows), SplitSettings())
    a1 = result.train.filter((pl.col("user_id") == "a") & (pl.col("track_id") == "t1")).row(0, named=True)
    assert a1["plays"] == 3 and a1["timestamp"] == datetime(2019, 3, 3)
    held = pl.concat([result.val, result.test])
    b2 = held.filter(pl.col("user_id") == "b").row(0, named=True)
    assert b2 == {"user_id": "b", "track_id": "t2", "timestamp": datetime(2020, 3, 2), "plays": 2}


def test_rows_are_sorted_by_user_first_listen_track(tmp_path):
    rows = [
        ("b", "t2", datetime(2019, 5, 1)),
        ("b", "t1", datetime(2019, 5, 1)),
        ("a", "t3", datetime(2019, 4, 1)),
        ("a", "t1", datetime(2019, 6, 1)),
        ("a", "t2", datetime(2020, 3, 1)),
        ("b", "t3", datetime(2020, 3, 1)),
    ]
    result = split_log(write_log(tmp_path / "log.tsv", rows), SplitSettings())
    assert result.train.select("user_id", "track_id").rows() == [("a", "t3"), ("a", "t1"), ("b", "t1"), ("b", "t2")]


def test_output_schema_matches_the_contract(rule_result, tmp_path):
    paths = [tmp_path / f"{n}" for n in ("train.parquet", "val.parquet", "test.parquet", "stats.csv")]
    write_split(rule_result, *paths)
    for path, frame in zip(paths[:3], (rule_result.train, rule_result.val, rule_result.test), strict=True):
        back = pl.read_parquet(path)
        assert back.schema == pl.Schema(
            {"user_id": pl.String, "track_id": pl.String, "timestamp": pl.Datetime("us"), "plays": pl.Int64}
        )
        assert back.equals(frame)
        assert back.null_count().sum_horizontal().item() == 0
    stats = pl.read_csv(paths[3])
    assert stats.columns == ["stage", "name", "listens", "interactions", "users", "items"]
    assert not list(tmp_path.glob(".*tmp"))  # atomic writes leave no temporaries


@pytest.mark.parametrize("history", ["all", "train_window"])
def test_unsorted_input_and_bz2_and_tiny_blocks_change_nothing(tmp_path, history, monkeypatch):
    rows = random_log(seed=3, n=3000)
    settings = SplitSettings(history=history)
    base = split_log(
        write_log(tmp_path / "sorted.tsv", sorted(rows, key=lambda r: (r[0], str(r[2])), reverse=True)), settings
    )
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    monkeypatch.setattr(split_mod, "PAIR_TOTALS_COMPACT_ROWS", 50)  # exercise the merging of partial totals
    monkeypatch.setattr(split_mod, "KEY_SET_COMPACT_ROWS", 50)
    other = split_log(write_log(tmp_path / "shuffled.tsv", shuffled, compress=True), settings, block_bytes=500)
    for part in ("train", "val", "test", "stats"):
        assert getattr(other, part).equals(getattr(base, part)), part


# --- the val/test user split ---


def test_split_users_is_seeded_deterministic_and_order_free():
    users = pl.Series([f"user{i:04d}" for i in range(1000)])
    val, test = split_users(users, 0.5, seed=7)
    assert len(val) == 500 and len(test) == 500
    assert set(val).isdisjoint(test) and set(val) | set(test) == set(users)
    again_val, _ = split_users(users.shuffle(seed=1), 0.5, seed=7)
    assert set(again_val) == set(val)
    other_val, _ = split_users(users, 0.5, seed=8)
    assert 150 < len(set(other_val) & set(val)) < 350  # a different seed is a different, unrelated draw
    assert 200 < sum(u < "user0500" for u in val) < 300  # not the alphabetical first half


def test_split_users_golden_values():
    """Pinned so that a library upgrade or another machine cannot change who is in val."""
    users = [f"u{i}" for i in range(8)]
    val, test = split_users(pl.Series(users), 0.5, seed=0)
    assert val.to_list() == ["u0", "u4", "u1", "u6"]
    # ... which is the documented rule: rank by BLAKE2b-128 of the id keyed with the seed
    ranked = sorted(
        users, key=lambda u: hashlib.blake2b(u.encode(), digest_size=16, key=(0).to_bytes(8, "big")).digest()
    )
    assert val.to_list() == ranked[:4] and sorted(test.to_list()) == sorted(ranked[4:])


@pytest.mark.parametrize(("n", "share", "n_val"), [(5, 0.5, 2), (7, 0.5, 3), (10, 0.3, 3), (10, 0.7, 7), (1, 0.5, 0)])
def test_split_users_sizes(n, share, n_val):
    val, test = split_users(pl.Series([f"u{i}" for i in range(n)]), share, seed=0)
    assert len(val) == n_val and len(test) == n - n_val


def test_same_split_across_runs_and_seeds_matter(tmp_path):
    path = write_log(tmp_path / "log.tsv", random_log(seed=5, n=4000))
    a = split_log(path, SplitSettings(seed=1))
    b = split_log(path, SplitSettings(seed=1))
    c = split_log(path, SplitSettings(seed=2))
    assert a.val.equals(b.val) and a.test.equals(b.test)
    assert set(a.val["user_id"]) != set(c.val["user_id"])
    assert (
        pl.concat([a.val, a.test])
        .sort("user_id", "timestamp", "track_id")
        .equals(pl.concat([c.val, c.test]).sort("user_id", "timestamp", "track_id"))
    )


def test_val_share(tmp_path):
    path = write_log(tmp_path / "log.tsv", random_log(seed=5, n=4000))
    result = split_log(path, SplitSettings(val_share=0.25))
    n_val, n_test = result.val["user_id"].n_unique(), result.test["user_id"].n_unique()
    assert n_val == (n_val + n_test) // 4


# --- an independent reference on random logs ---


def random_log(seed: int, n: int, users: int = 40, tracks: int = 60) -> list[tuple[str, str, datetime | str]]:
    rng = np.random.default_rng(seed)
    start = datetime(2017, 6, 1)
    span = (datetime(2020, 3, 20) - start).total_seconds()
    rows: list[tuple[str, str, datetime | str]] = []
    for _ in range(n):
        u = int(rng.integers(users))
        # each user mostly replays a personal set, sometimes something anywhere
        t = int((u * 3 + rng.integers(8)) % tracks) if rng.random() < 0.7 else int(rng.integers(tracks))
        when = start + timedelta(seconds=int(span * rng.random() ** 0.5))
        rows.append((f"u{u}", f"t{t}", when))
    late = datetime(2019, 12, 1)
    for i in range(80):  # users and tracks that only appear late: cold in train for some windows
        when = late + timedelta(seconds=int((datetime(2020, 3, 20) - late).total_seconds() * rng.random()))
        if i % 2:
            rows.append((f"late{i % 5}", f"t{int(rng.integers(tracks))}", when))
        else:
            rows.append((f"u{int(rng.integers(users))}", f"new{i % 7}", when))
    rows += [("gone", "t1", datetime(2017, 7, 1)), ("u5", "oldtrack", datetime(2017, 7, 2))]
    rows.append(("u1", "t1", "1970-01-01 01:00:00"))
    rows.append(("u2", "t3", "1999-12-31 23:59:59"))
    # boundary instants
    rows += [("u3", "t4", TRAIN_START), ("u3", "t5", TEST_START), ("u4", "t6", TEST_START - US * 10**6)]
    return rows


def reference_split(rows, settings: SplitSettings) -> dict[str, set[tuple[str, str, datetime, int]]]:
    """The protocol written the obvious way in pandas, like the published code (plus history=all)."""
    df = pd.DataFrame(rows, columns=["user_id", "track_id", "timestamp"])
    df["timestamp"] = pd.to_datetime(df["timestamp"].astype(str))
    df = df[df.timestamp >= settings.drop_before]

    def compress(x):
        return x.groupby(["user_id", "track_id"]).agg(timestamp=("timestamp", "min"), plays=("timestamp", "count"))

    train = compress(df[(df.timestamp >= settings.train_start) & (df.timestamp < settings.test_start)])
    period = df[df.timestamp >= settings.test_start]
    if settings.test_end is not None:
        period = period[period.timestamp < settings.test_end]
    held = compress(period)
    lookback = settings.train_start if settings.history == "train_window" else settings.drop_before
    known = set(compress(df[(df.timestamp >= lookback) & (df.timestamp < settings.test_start)]).index)
    held = held[[p not in known for p in held.index]]
    train_users = set(train.index.get_level_values(0))
    train_tracks = set(train.index.get_level_values(1))
    held = held[[u in train_users and t in train_tracks for u, t in held.index]]
    val_users, _ = split_users(
        pl.Series(sorted(set(held.index.get_level_values(0)))), settings.val_share, settings.seed
    )
    val_set = set(val_users)

    def rows_of(frame):
        return {
            (u, t, x.to_pydatetime(), int(p))
            for (u, t), x, p in zip(frame.index, frame.timestamp, frame.plays, strict=True)
        }

    evaluated = set(held.index.get_level_values(0))
    return {
        "train": rows_of(train),
        "val": rows_of(held[[u in val_set for u, _ in held.index]]),
        "test": rows_of(held[[u not in val_set for u, _ in held.index]]),
        # what ranking must exclude: the same `known` set, for evaluated users and rankable tracks
        "known": {(u, t) for u, t in known if u in evaluated and t in train_tracks},
    }


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"history": "train_window"},
        {"test_start": "2019-11-15 12:00:00", "train_months": 5, "test_end": "2020-01-10", "seed": 3},
        {"train_months": 30, "val_share": 0.3, "drop_before": "2017-07-01"},
    ],
)
def test_matches_an_independent_reference(tmp_path, config):
    rows = random_log(seed=11, n=5000)
    settings = SplitSettings.from_config(config)
    result = split_log(write_log(tmp_path / "log.tsv", rows), settings)
    expected = reference_split(rows, settings)
    for part in ("train", "val", "test"):
        got = {(u, t, x, p) for u, t, x, p in getattr(result, part).iter_rows()}
        assert got == expected[part], part
        assert len(got) > 0
    assert pairs(result.known) == expected["known"]
    assert result.known.height == len(expected["known"])  # one row per pair
    assert result.known.rows() == sorted(result.known.rows())


# --- malformed rows end to end, empty parts, settings ---


def test_malformed_rows_error_by_default_and_are_counted_when_skipped(tmp_path):
    rows = rule_log()
    path = tmp_path / "log.tsv"
    text = HEADER + "".join(f"{u}\t{t}\t{x if isinstance(x, str) else ts(x)}\n" for u, t, x in rows)
    path.write_text(text + "x\t\t2020-03-01 00:00:00\nx\ty\tnot a time\nonly-one-field\n")
    with pytest.raises(
        ListeningLogError, match=r"line 27: malformed row \(empty track_id\).*onion.split.malformed_rows"
    ):
        split_log(path, SplitSettings(), where="datasets.onion.split")
    result = split_log(path, SplitSettings(malformed_rows="skip"))
    assert stat(result, "input", "log")["listens"] == 28
    assert stat(result, "removed", "malformed_empty_id")["listens"] == 1
    assert stat(result, "removed", "malformed_timestamp")["listens"] == 1
    assert stat(result, "removed", "malformed_columns")["listens"] == 1
    clean = split_log(write_log(tmp_path / "clean.tsv", rows), SplitSettings())
    for part in ("train", "val", "test"):
        assert getattr(result, part).equals(getattr(clean, part))


def test_empty_parts_say_what_to_change(tmp_path):
    path = write_log(tmp_path / "log.tsv", [("a", "t1", datetime(2015, 1, 1)), ("a", "t2", datetime(2015, 2, 1))])
    with pytest.raises(EmptySplitError, match=r"no listens in the train window.*2015-01-01.*test_start"):
        split_log(path, SplitSettings())
    path = write_log(tmp_path / "log.tsv", [("a", "t1", datetime(2019, 5, 1)), ("a", "t1", datetime(2020, 3, 1))])
    with pytest.raises(EmptySplitError, match=r"the val and test part is empty: 0 user"):
        split_log(path, SplitSettings())
    one = [("a", "t1", datetime(2019, 5, 1)), ("b", "t2", datetime(2019, 5, 1)), ("a", "t2", datetime(2020, 3, 1))]
    with pytest.raises(EmptySplitError, match=r"the val part is empty: 1 user\(s\).*val_share 0.5"):
        split_log(write_log(tmp_path / "one.tsv", one), SplitSettings())


def test_settings_defaults_are_the_paper():
    s = SplitSettings.from_config({})
    assert (s.test_start, s.train_start, s.test_end, s.val_share, s.history) == (
        TEST_START,
        TRAIN_START,
        None,
        0.5,
        "all",
    )
    assert s.drop_before == datetime(2000, 1, 1) and s.malformed_rows == "error" and s.protocol == "warm"


def test_settings_accept_yaml_dates_and_reject_bad_values():
    s = SplitSettings.from_config({"test_start": date(2020, 3, 1), "test_end": "2020-03-15 06:00:00"})
    assert s.test_start == datetime(2020, 3, 1) and s.test_end == datetime(2020, 3, 15, 6)
    bad = [
        ({"test_start": "20.02.2020"}, "test_start"),
        ({"test_end": "2020-02-19"}, "test_end"),
        ({"val_share": 1.0}, "val_share"),
        ({"train_months": 0}, "train_months"),
        ({"history": "some"}, "history"),
        ({"protocol": "cold_start"}, "protocol"),
        ({"malformed_rows": "ignore"}, "malformed_rows"),
        ({"drop_before": "2019-06-01"}, "drop_before"),
        ({"tets_start": "2020-02-20"}, "unknown split setting"),
    ]
    for config, key in bad:
        with pytest.raises(SplitConfigError, match=rf"datasets\.x\.split: .*{key}"):
            SplitSettings.from_config(config, where="datasets.x.split")


@pytest.mark.parametrize(
    ("instant", "months", "expected"),
    [
        (datetime(2020, 2, 20), 12, datetime(2019, 2, 20)),
        (datetime(2020, 3, 31, 8), 1, datetime(2020, 2, 29, 8)),
        (datetime(2021, 3, 31), 13, datetime(2020, 2, 29)),
        (datetime(2020, 1, 15), 1, datetime(2019, 12, 15)),
        (datetime(2020, 1, 15), 25, datetime(2017, 12, 15)),
    ],
)
def test_months_before(instant, months, expected):
    assert months_before(instant, months) == expected

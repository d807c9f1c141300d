"""The `cold_items` split protocol: hand-built logs, invariants, and an independent pandas reference."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from split_helpers import pairs, stat

from audiorec.data.split import SplitConfigError, SplitSettings, split_log, split_users, write_split
from audiorec.data.split_cold import held_out_tracks

HEADER = "user_id\ttrack_id\ttimestamp\n"
D = datetime


def write_log(path: Path, rows: list[tuple[str, str, datetime]]) -> Path:
    path.write_text(HEADER + "".join(f"{u}\t{t}\t{x:%Y-%m-%d %H:%M:%S}\n" for u, t, x in rows))
    return path


# --- new tracks only (cold_item_share 0): every expectation by hand ---

NEW_TRACK_LOG = [
    ("u1", "t1", D(2019, 6, 1)),
    ("u1", "t2", D(2019, 6, 2)),
    ("u1", "n1", D(2020, 3, 1)),  # new track, new to u1: asked
    ("u1", "t3", D(2020, 3, 2)),  # warm track: not asked under cold_items
    ("u2", "t3", D(2019, 7, 1)),
    ("u2", "n1", D(2020, 3, 3)),  # asked
    ("u2", "n2", D(2020, 3, 4)),  # asked
    ("u2", "n2", D(2020, 3, 5)),  # second listen of the same pair: plays 2
    ("u3", "t1", D(2019, 8, 1)),
    ("u3", "old", D(2017, 1, 1)),  # before the train window: history
    ("u3", "old", D(2020, 3, 1)),  # cold track (no train-window listen) but known to u3
    ("cu", "n1", D(2020, 3, 1)),  # cold user: not in train
]


@pytest.fixture
def new_only(tmp_path):
    settings = SplitSettings.from_config({"protocol": "cold_items", "cold_item_share": 0})
    return split_log(write_log(tmp_path / "log.tsv", NEW_TRACK_LOG), settings)


def test_new_tracks_are_the_cold_items(new_only):
    r = new_only
    assert pairs(r.train) == {("u1", "t1"), ("u1", "t2"), ("u2", "t3"), ("u3", "t1")}
    asked = pl.concat([r.val, r.test])
    assert pairs(asked) == {("u1", "n1"), ("u2", "n1"), ("u2", "n2")}
    assert asked.filter(pl.col("track_id") == "n2")["plays"].to_list() == [2]
    assert set(r.val["user_id"]).isdisjoint(r.test["user_id"]) and r.val.height and r.test.height
    items = r.catalogue
    assert items["track_id"].to_list() == sorted(items["track_id"].to_list())
    cold = dict(zip(items["track_id"], items["cold"], strict=True))
    # `old` is cold (no train-window listen) and in the catalogue, though nobody is asked for it
    assert cold == {"t1": False, "t2": False, "t3": False, "n1": True, "n2": True, "old": True}
    assert items.filter(pl.col("candidate"))["track_id"].to_list() == ["n1", "n2", "old"]


def test_stats_of_a_cold_split(new_only):
    r = new_only
    assert stat(r, "removed", "held_out_tracks")["interactions"] == 0
    assert stat(r, "removed", "known_pairs")["interactions"] == 1  # u3/old
    assert stat(r, "removed", "warm_tracks")["interactions"] == 1  # u1/t3
    assert stat(r, "removed", "cold_users")["interactions"] == 1  # cu/n1
    assert (stat(r, "catalogue", "warm_tracks")["items"], stat(r, "catalogue", "cold_tracks")["items"]) == (3, 3)
    assert stat(r, "catalogue", "cold_tracks_asked")["items"] == 2


def test_cold_candidates_all_lets_warm_tracks_compete(tmp_path):
    settings = SplitSettings.from_config({"protocol": "cold_items", "cold_item_share": 0, "cold_candidates": "all"})
    r = split_log(write_log(tmp_path / "log.tsv", NEW_TRACK_LOG), settings)
    assert r.catalogue["candidate"].all()
    assert pairs(pl.concat([r.val, r.test])) == {("u1", "n1"), ("u2", "n1"), ("u2", "n2")}


def test_without_new_tracks_only_the_held_out_share_is_cold(tmp_path):
    rows = random_log(seed=3, n=3000)
    settings = SplitSettings.from_config({"protocol": "cold_items", "cold_item_share": 0.2, "include_new_tracks": False})
    r = split_log(write_log(tmp_path / "log.tsv", rows), settings)
    cold = set(r.catalogue.filter(pl.col("cold"))["track_id"])
    window = {t for _, t, x in rows if D(2019, 2, 20) <= x < D(2020, 2, 20)}
    assert cold <= window and len(cold) == int(0.2 * len(window))
    assert not any(t.startswith("new") for t in r.catalogue["track_id"])


# --- the held-out share ---


def test_held_out_tracks_is_a_seeded_floor_share_independent_of_order():
    ids = pl.Series([f"t{i}" for i in range(101)])
    a = held_out_tracks(ids, 0.1, seed=0)
    assert a.len() == 10 and a.to_list() == sorted(a.to_list()) and set(a) <= set(ids)
    assert a.equals(held_out_tracks(ids.reverse(), 0.1, seed=0))
    assert a.equals(held_out_tracks(pl.concat([ids, ids]), 0.1, seed=0))  # duplicates count once
    assert set(a) != set(held_out_tracks(ids, 0.1, seed=1))
    assert set(a) <= set(held_out_tracks(ids, 0.3, seed=0))  # nested: a larger share adds tracks
    assert held_out_tracks(ids, 0.0, seed=0).len() == 0
    # not the ranking of the val/test user split with the same seed
    first_users, _ = split_users(ids, 0.1, 0)
    assert set(first_users) != set(a)


# --- invariants and an independent reference on random logs ---


def random_log(seed: int, n: int, users: int = 50, tracks: int = 80) -> list[tuple[str, str, datetime]]:
    rng = np.random.default_rng(seed)
    start = D(2018, 6, 1)
    span = (D(2020, 3, 20) - start).total_seconds()
    rows = []
    for _ in range(n):
        u = int(rng.integers(users))
        t = int((u * 3 + rng.integers(10)) % tracks) if rng.random() < 0.6 else int(rng.integers(tracks))
        rows.append((f"u{u}", f"t{t}", start + timedelta(seconds=int(span * rng.random() ** 0.6))))
    for i in range(60):  # tracks released after test_start, and a few users who join then
        when = D(2020, 2, 20) + timedelta(hours=int(rng.integers(24 * 28)))
        user = f"u{int(rng.integers(users))}" if i % 6 else f"late{i}"
        rows.append((user, f"new{i % 9}", when))
    return rows


def reference_cold_split(rows, settings: SplitSettings) -> dict[str, set]:
    """The protocol written the obvious way in pandas (held-out share from held_out_tracks)."""
    df = pd.DataFrame(rows, columns=["user_id", "track_id", "timestamp"])
    df = df[df.timestamp >= settings.drop_before]

    def compress(x):
        return x.groupby(["user_id", "track_id"]).agg(timestamp=("timestamp", "min"), plays=("timestamp", "count"))

    window = df[(df.timestamp >= settings.train_start) & (df.timestamp < settings.test_start)]
    period = df[df.timestamp >= settings.test_start]
    held = set(held_out_tracks(pl.Series(sorted(set(window.track_id))), settings.cold_item_share, settings.seed))
    cold = set(held)
    if settings.include_new_tracks:
        cold |= set(period.track_id) - set(window.track_id)
    train = compress(window[~window.track_id.isin(held)])
    lookback = settings.train_start if settings.history == "train_window" else settings.drop_before
    known = set(compress(df[(df.timestamp >= lookback) & (df.timestamp < settings.test_start)]).index)
    asked = compress(period)
    train_users = set(train.index.get_level_values(0))
    asked = asked[[(u, t) not in known and t in cold and u in train_users for u, t in asked.index]]
    val_users, _ = split_users(pl.Series(sorted(set(asked.index.get_level_values(0)))), settings.val_share, settings.seed)

    def rows_of(frame):
        return {(u, t, x.to_pydatetime(), int(p)) for (u, t), x, p in zip(frame.index, frame.timestamp, frame.plays, strict=True)}

    in_val = [u in set(val_users) for u, _ in asked.index]
    return {
        "train": rows_of(train),
        "val": rows_of(asked[in_val]),
        "test": rows_of(asked[[not v for v in in_val]]),
        "cold": cold,
    }


@pytest.mark.parametrize(
    "config",
    [
        {"cold_item_share": 0.1},
        {"cold_item_share": 0.25, "history": "train_window", "seed": 4},
        {"cold_item_share": 0.15, "include_new_tracks": False, "val_share": 0.3},
    ],
)
def test_matches_an_independent_reference(tmp_path, config):
    rows = random_log(seed=7, n=4000)
    settings = SplitSettings.from_config({"protocol": "cold_items", **config})
    result = split_log(write_log(tmp_path / "log.tsv", rows), settings)
    expected = reference_cold_split(rows, settings)
    for part in ("train", "val", "test"):
        got = {(u, t, x, p) for u, t, x, p in getattr(result, part).iter_rows()}
        assert got == expected[part], part
        assert got, part
    assert set(result.catalogue.filter(pl.col("cold"))["track_id"]) == expected["cold"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cold_items_never_appear_in_train_and_are_all_that_is_asked(tmp_path, seed):
    rows = random_log(seed=seed, n=3000)
    settings = SplitSettings.from_config({"protocol": "cold_items", "cold_item_share": 0.2, "seed": seed})
    r = split_log(write_log(tmp_path / "log.tsv", rows), settings)
    cold = set(r.catalogue.filter(pl.col("cold"))["track_id"])
    train_tracks, train_users = set(r.train["track_id"]), set(r.train["user_id"])
    asked = pl.concat([r.val, r.test])
    assert cold and train_tracks.isdisjoint(cold)
    assert set(asked["track_id"]) <= cold
    assert set(asked["user_id"]) <= train_users
    assert set(r.catalogue["track_id"]) == train_tracks | cold
    # nothing asked was heard by its user before test_start
    before = {(u, t) for u, t, x in rows if x < settings.test_start}
    assert pairs(asked).isdisjoint(before)
    # stats add up: window - removals = parts, in both windows
    for window, removals, parts in (
        ("train_window", ["held_out_tracks"], ["train"]),
        ("test_window", ["known_pairs", "warm_tracks", "cold_users"], ["val", "test"]),
    ):
        total = stat(r, "window", window)["interactions"]
        assert total - sum(stat(r, "removed", n)["interactions"] for n in removals) == sum(
            stat(r, "part", p)["interactions"] for p in parts
        )


def test_warm_and_its_old_name_give_the_same_split(tmp_path):
    path = write_log(tmp_path / "log.tsv", random_log(seed=1, n=2000))
    warm = split_log(path, SplitSettings.from_config({"protocol": "warm"}))
    old = split_log(path, SplitSettings.from_config({"protocol": "temporal"}))
    for part in ("train", "val", "test", "stats", "catalogue"):
        assert getattr(warm, part).equals(getattr(old, part)), part
    # the warm catalogue: exactly the train tracks, none cold, all candidates
    assert warm.catalogue["track_id"].to_list() == sorted(set(warm.train["track_id"]))
    assert not warm.catalogue["cold"].any() and warm.catalogue["candidate"].all()
    assert warm.stats.filter(pl.col("stage") == "catalogue").is_empty()


def test_write_split_writes_the_catalogue(tmp_path, new_only):
    out = {name: tmp_path / f"{name}.parquet" for name in ("train", "val", "test", "catalogue")}
    write_split(new_only, out["train"], out["val"], out["test"], tmp_path / "stats.csv", catalogue=out["catalogue"])
    items = pl.read_parquet(out["catalogue"])
    assert items.schema == {"track_id": pl.String, "cold": pl.Boolean, "candidate": pl.Boolean}
    assert items.equals(new_only.catalogue)


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"cold_item_share": 1.0}, "cold_item_share"),
        ({"cold_item_share": -0.1}, "cold_item_share"),
        ({"cold_candidates": "warm"}, "cold_candidates"),
        ({"include_new_tracks": "yes"}, "include_new_tracks"),
        ({"cold_item_share": 0, "include_new_tracks": False}, "holds no track out"),
    ],
)
def test_bad_cold_settings_name_the_key(config, key):
    with pytest.raises(SplitConfigError, match=rf"datasets\.x\.split: .*{key}"):
        SplitSettings.from_config({"protocol": "cold_items", **config}, where="datasets.x.split")


def test_schema_split_keys_and_defaults_are_the_settings():
    import dataclasses

    import yaml

    schema = yaml.safe_load((Path(__file__).resolve().parents[2] / "schemas/config.schema.yaml").read_text())
    props = schema["$defs"]["split"]["properties"]
    fields = {f.name: f.default for f in dataclasses.fields(SplitSettings)}
    assert set(props) == set(fields)
    for key in ("protocol", "cold_item_share", "include_new_tracks", "cold_candidates", "val_share", "seed"):
        assert props[key]["default"] == fields[key], key
    assert set(props["protocol"]["enum"]) == {"warm", "temporal", "cold_items"}


def test_an_empty_cold_split_says_what_to_change(tmp_path):
    from audiorec.data.split import EmptySplitError

    rows = [("a", "t1", D(2019, 6, 1)), ("b", "t2", D(2019, 6, 1)), ("a", "t2", D(2020, 3, 1))]
    settings = SplitSettings.from_config({"protocol": "cold_items", "cold_item_share": 0})
    with pytest.raises(EmptySplitError, match=r"0 user\(s\).*any of the 0 cold.*Raise `cold_item_share`"):
        split_log(write_log(tmp_path / "log.tsv", rows), settings)

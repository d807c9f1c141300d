"""Beyond-accuracy metrics against a plain-Python reference and hand-computed cases."""

from __future__ import annotations

import bz2
import itertools
import math
import random

import numpy as np
import polars as pl
import pytest

from audiorec.evaluation.beyond import (
    BeyondError,
    catalogue_metrics,
    gini,
    history_popularity,
    per_user_beyond,
    train_popularity,
)
from audiorec.evaluation.diversity import read_genre_labels


def reference(lists, train, genres, k):
    """Textbook definitions, one user at a time; lists: user -> ranked tracks, train: user -> set."""
    users_of = {}
    for u, tracks in train.items():
        for t in tracks:
            users_of.setdefault(t, set()).add(u)
    n_users = len(train)
    pop = {t: len(us) / n_users for t, us in users_of.items()}
    out = {}
    for user, ranked in lists.items():
        top = ranked[:k]
        if not top:
            out[user] = {"novelty": 0.0, "arp": 0.0, "pop_lift": 0.0, "diversity": 0.0, "n_labelled": 0}
            continue
        novelty = sum(-math.log2(max(len(users_of.get(t, ())), 1) / n_users) for t in top) / len(top)
        arp = sum(pop.get(t, 0.0) for t in top) / len(top)
        hist = train.get(user)
        lift = 0.0 if not hist else (arp - sum(pop[t] for t in hist) / len(hist)) / (sum(pop[t] for t in hist) / len(hist))
        lab = [t for t in top if genres.get(t)]
        dists = [
            1 - len(genres[a] & genres[b]) / len(genres[a] | genres[b]) for a, b in itertools.combinations(lab, 2)
        ]
        out[user] = {
            "novelty": novelty,
            "arp": arp,
            "pop_lift": lift,
            "diversity": sum(dists) / len(dists) if dists else 0.0,
            "n_labelled": len(lab),
        }
    return out


def frames(lists, train, genres):
    recs = pl.DataFrame(
        [{"user_id": u, "track_id": t, "rank": i + 1, "score": 0.0} for u, r in lists.items() for i, t in enumerate(r)],
        schema={"user_id": pl.String, "track_id": pl.String, "rank": pl.Int64, "score": pl.Float64},
    )
    truth = pl.DataFrame({"user_id": sorted(lists), "track_id": ["x"] * len(lists)})
    train_frame = pl.DataFrame(
        [{"user_id": u, "track_id": t} for u, ts in train.items() for t in sorted(ts)],
        schema={"user_id": pl.String, "track_id": pl.String},
    )
    genre_frame = pl.DataFrame(
        {"track_id": list(genres), "genres": [sorted(g) for g in genres.values()]},
        schema={"track_id": pl.String, "genres": pl.List(pl.String)},
    ).filter(pl.col("genres").list.len() > 0)
    return recs, truth, train_frame, genre_frame


def check(lists, train, genres, k):
    recs, truth, train_frame, genre_frame = frames(lists, train, genres)
    got = per_user_beyond(recs, truth, train_frame, k, genre_frame)
    expected = reference(lists, train, genres, k)
    assert got["user_id"].to_list() == sorted(lists)
    for row in got.iter_rows(named=True):
        exp = expected[row["user_id"]]
        for name in ("novelty", "arp", "pop_lift", "diversity"):
            assert row[name] == pytest.approx(exp[name], abs=1e-12), (row["user_id"], name)
        assert row["n_labelled"] == exp["n_labelled"]
        assert row["n_recs"] == min(len(lists[row["user_id"]]), k)
    return got


def test_hand_computed():
    # 4 train users: a played by all, b by two, c by one; d (cold) by nobody.
    train = {"u1": {"a", "b", "c"}, "u2": {"a", "b"}, "u3": {"a"}, "u4": {"a"}}
    genres = {"a": {"rock"}, "b": {"rock", "pop"}, "c": {"jazz"}, "d": set()}
    lists = {"u1": ["d", "a"], "u3": ["b", "c", "a"], "u2": []}
    got = check(lists, train, genres, k=2).rows_by_key("user_id", named=True)
    u1, u3 = got["u1"][0], got["u3"][0]
    # u1: d floors at one listener -> log2(4) = 2; a -> 0.
    assert u1["novelty"] == pytest.approx(1.0)
    assert u1["arp"] == pytest.approx(0.5)  # (0 + 1) / 2
    # u1's history: a 1, b 0.5, c 0.25 -> mean 7/12; lift = (0.5 - 7/12) / (7/12)
    assert u1["pop_lift"] == pytest.approx((0.5 - 7 / 12) / (7 / 12))
    assert (u1["diversity"], u1["n_labelled"]) == (0.0, 1)  # one labelled track: no pair
    # u3, K=2: b, c -> novelty (1 + 2) / 2, genres {rock,pop} vs {jazz}: distance 1
    assert u3["novelty"] == pytest.approx(1.5)
    assert u3["diversity"] == pytest.approx(1.0)
    assert got["u2"][0]["n_recs"] == 0 and got["u2"][0]["novelty"] == 0.0


def test_jaccard_partial_overlap():
    train = {"u": {"a"}}
    genres = {"a": {"rock", "pop"}, "b": {"pop"}, "c": {"pop", "jazz", "rock"}}
    got = check({"u": ["a", "b", "c"]}, train, genres, k=3)
    # pairs: a-b 1-1/2, a-c 1-2/3, b-c 1-1/3
    assert got["diversity"][0] == pytest.approx((0.5 + 1 / 3 + 2 / 3) / 3)


@pytest.mark.parametrize("seed", range(4))
def test_random_against_reference(seed):
    rng = random.Random(seed)
    tracks = [f"t{i:02d}" for i in range(40)]
    names = ["rock", "pop", "jazz", "folk", "metal"]
    genres = {t: set(rng.sample(names, rng.choice([0, 1, 1, 2, 3]))) for t in tracks}
    train = {f"u{u:02d}": set(rng.sample(tracks[:30], rng.randint(1, 12))) for u in range(25)}
    lists = {u: rng.sample(tracks, rng.choice([0, 1, 5, 10, 10])) for u in list(train)[:20]}
    lists["stranger"] = rng.sample(tracks, 6)  # a user of the part without train history
    got = check(lists, train, genres, k=8)
    assert not got.select(pl.all().exclude("user_id").is_nan().any()).row(0)[0]


def test_recs_outside_the_part_and_beyond_k_are_ignored():
    train = {"u1": {"a"}, "u2": {"b"}}
    recs, truth, train_frame, _ = frames({"u1": ["a", "b", "c"]}, train, {})
    foreign = pl.DataFrame({"user_id": ["zz"], "track_id": ["b"], "rank": [1], "score": [0.0]})
    got = per_user_beyond(pl.concat([recs, foreign]), truth, train_frame, 2)
    assert got.columns == ["user_id", "novelty", "arp", "pop_lift", "n_recs"]  # no labels: no diversity
    assert got["n_recs"].to_list() == [2]
    assert got["arp"][0] == pytest.approx(0.5)


def test_gini_reference():
    def plain(x):
        n, total = len(x), sum(x)
        return sum(abs(a - b) for a in x for b in x) / (2 * n * total) if total else 0.0

    rng = np.random.default_rng(0)
    for _ in range(20):
        x = rng.integers(0, 10, size=rng.integers(1, 30))
        assert gini(x) == pytest.approx(plain(list(x)), abs=1e-12)
    assert gini(np.array([3, 3, 3])) == 0.0
    assert gini(np.array([0, 0, 0, 5])) == pytest.approx(0.75)
    assert gini(np.zeros(4)) == 0.0


def test_catalogue_metrics():
    recs, truth, _, _ = frames({"u1": ["a", "b", "c"], "u2": ["a", "d"]}, {"u1": {"a"}}, {})
    catalogue = pl.DataFrame({"track_id": list("abcdef"), "candidate": [True] * 5 + [False]})
    got = catalogue_metrics(recs, truth, catalogue, k=2)
    # top-2: u1 a, b; u2 a, d -> counts a2 b1 d1 c0 e0 over the 5 candidates
    assert got["coverage"] == pytest.approx(3 / 5)
    assert got["gini"] == pytest.approx(gini(np.array([2, 1, 1, 0, 0])))
    assert (got["n_recommended"], got["n_candidates"]) == (3, 5)


def test_popularity_and_errors():
    pop, n = train_popularity(pl.DataFrame({"user_id": ["a", "a", "b"], "track_id": ["x", "x", "x"]}))
    assert n == 2 and pop.row(0, named=True) == {"track_id": "x", "n_users": 2, "popularity": 1.0}
    with pytest.raises(BeyondError, match="train split is empty"):
        train_popularity(pl.DataFrame(schema={"user_id": pl.String, "track_id": pl.String}))
    with pytest.raises(BeyondError, match="lack column `rank`"):
        per_user_beyond(
            pl.DataFrame({"user_id": ["a"], "track_id": ["x"]}),
            pl.DataFrame({"user_id": ["a"], "track_id": ["x"]}),
            pl.DataFrame({"user_id": ["a"], "track_id": ["x"]}),
            5,
        )


def test_read_genre_labels(tmp_path):
    m4a = tmp_path / "id_genres.tsv.bz2"
    m4a.write_bytes(bz2.compress(b"id\tgenres\nA\trock,indie rock, pop\nB\t\nC\tjazz\n"))
    labels = read_genre_labels(m4a).sort("track_id")
    assert labels["track_id"].to_list() == ["A", "C"]
    assert sorted(labels["genres"][0].to_list()) == ["indie rock", "pop", "rock"]
    synthetic = tmp_path / "syn.tsv"
    synthetic.write_text("id\tgenre\ttempo\nt1\tfolk\t90\n")
    assert read_genre_labels(synthetic)["genres"].to_list() == [["folk"]]
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\tstyle\nt1\tfolk\n")
    with pytest.raises(ValueError, match="bad.tsv.*`genres`"):
        read_genre_labels(bad)


def test_history_popularity_is_bitwise_independent_of_row_order():
    """A cluster job and a local run read the same rows in other orders and with other thread
    counts: the per-user means must come out in the same bits (they sum in sorted order)."""
    rng = np.random.default_rng(0)
    u, t = rng.integers(0, 300, 20_000), rng.integers(0, 2_000, 20_000)
    train = pl.DataFrame({"user_id": [f"u{x}" for x in u], "track_id": [f"t{x}" for x in t]})
    results = []
    for seed in (0, 1, 2):
        shuffled = train.sample(fraction=1.0, shuffle=True, seed=seed)
        popularity, _ = train_popularity(shuffled)
        results.append(history_popularity(shuffled, popularity).sort("user_id"))
    for other in results[1:]:
        assert other["user_id"].to_list() == results[0]["user_id"].to_list()
        assert other["hist_pop"].to_numpy().tobytes() == results[0]["hist_pop"].to_numpy().tobytes()
    # and each mean is the plain mean of the user's distinct tracks' popularity
    pairs = train.unique()
    pop = pairs.group_by("track_id").len()
    share = dict(zip(pop["track_id"], pop["len"] / pairs["user_id"].n_unique(), strict=True))
    first = results[0].row(0, named=True)
    tracks = pairs.filter(pl.col("user_id") == first["user_id"])["track_id"]
    assert first["hist_pop"] == pytest.approx(np.mean([share[x] for x in tracks]), rel=1e-12)
    assert first["hist_len"] == len(tracks)

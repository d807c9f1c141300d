"""Artist-aware cold start: the artist_mean vectors, the training job, artist groups of targets."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from _tiny_split import one_thread, part, run_paths, split  # noqa: F401 (autouse fixture)

from audiorec.evaluation.artists import (
    per_user_artist_metrics,
    read_artists,
    target_groups,
)
from audiorec.models.artist_mean import artist_mean_vectors
from audiorec.models.item_vectors import ItemVectors
from audiorec.models.run import RunPaths, train_run
from tests.unit.test_metrics import reference_metrics

ARTISTS = pl.DataFrame({"track_id": ["a1", "a2", "a3", "b1", "b2", "b3", "c1"], "artist": list("AAABBBC")})
TRAIN = [("u1", "a1"), ("u1", "a2"), ("u2", "b1"), ("u2", "b2"), ("u3", "a1"), ("u3", "b1")]
VAL = [("u1", "a3"), ("u2", "b3"), ("u3", "c1"), ("u3", "x")]


def test_cold_tracks_of_seen_artists_get_their_warm_mean():
    data = split(TRAIN, VAL, VAL)
    assert data.track_ids == ["a1", "a2", "a3", "b1", "b2", "b3", "c1", "x"]
    rng = np.random.default_rng(0)
    vectors = ItemVectors(rng.standard_normal((8, 5)).astype(np.float32), np.zeros(8, dtype=bool))
    out, info = artist_mean_vectors(vectors, data, ARTISTS)
    v, o = vectors.vectors, out.vectors
    np.testing.assert_allclose(o[2], (v[0] + v[1]) / 2, rtol=1e-6)  # a3 <- mean(a1, a2)
    np.testing.assert_allclose(o[5], (v[3] + v[4]) / 2, rtol=1e-6)  # b3 <- mean(b1, b2)
    for kept in (0, 1, 3, 4, 6, 7):  # warm tracks, the new artist C and the unlisted x keep theirs
        np.testing.assert_array_equal(o[kept], v[kept])
    assert info == {
        "n_cold_items": 4,
        "n_cold_items_seen_artist": 2,
        "n_cold_items_new_artist": 1,
        "n_items_without_artist": 1,
    }
    # under the warm protocol nothing is cold: the vectors (and so the model) are KNN's
    warm = split(TRAIN + [("u3", t) for t in ("a3", "b3", "c1", "x")], VAL, VAL)
    same, _ = artist_mean_vectors(vectors, warm, ARTISTS)
    np.testing.assert_array_equal(same.vectors, vectors.vectors)


def test_the_training_job_ranks_the_users_artist_first(tmp_path):
    """With random vectors the artist identity is the only signal: each user's own artist's cold track comes first."""
    for name, rows in (("train", TRAIN), ("val", VAL), ("test", VAL)):
        part(rows).write_parquet(tmp_path / f"{name}.parquet")
    info_file = tmp_path / "id_information.tsv"
    info_file.write_text("id\tartist\tsong\talbum_name\n" + "".join(f"{t}\t{a}\ts\tal\n" for t, a in ARTISTS.rows()))
    out = tmp_path / "run"
    out.mkdir()
    paths = run_paths(tmp_path, out, extra={"artists": str(info_file)})
    train_run({"type": "artist_mean", "random_dim": 64}, "random", 0, 3, paths)
    recs = pl.read_parquet(out / "recs_val.parquet").filter(pl.col("rank") == 1)
    top = dict(recs.select("user_id", "track_id").rows())
    assert (top["u1"], top["u2"]) == ("a3", "b3")
    assert json.loads((out / "run.json").read_text())["n_cold_items_seen_artist"] == 2
    with pytest.raises(ValueError, match="id_information"):
        train_run({"type": "artist_mean"}, "random", 0, 3, RunPaths(**{**paths.__dict__, "extra": {}}))


def test_target_groups_and_metrics_per_group():
    truth = part(VAL + [("u1", "b3"), ("u1", "c1")])
    grouped = target_groups(truth, part(TRAIN), ARTISTS)
    groups = dict(zip(zip(grouped["user_id"], grouped["track_id"]), grouped["artist_group"], strict=True))
    assert groups == {
        ("u1", "a3"): "seen_artist", ("u2", "b3"): "seen_artist", ("u1", "b3"): "seen_artist",
        ("u3", "c1"): "new_artist", ("u1", "c1"): "new_artist", ("u3", "x"): "unknown_artist",
    }  # fmt: skip
    lists = {"u1": ["c1", "b3", "a3"], "u2": ["a3", "c1", "b3"], "u3": ["x", "a3", "c1"]}
    recs = pl.DataFrame(
        [{"user_id": u, "track_id": t, "rank": i + 1} for u, ts in lists.items() for i, t in enumerate(ts)]
    )
    got = per_user_artist_metrics(recs, truth, part(TRAIN), ARTISTS, k=2)
    for row in got.iter_rows(named=True):
        relevant = {t for (u, t), g in groups.items() if u == row["user_id"] and g == row["artist_group"]}
        want = reference_metrics(lists[row["user_id"]], relevant, 2)
        for metric, value in want.items():
            assert row[metric] == pytest.approx(value), (row, metric)
    users = {g: sorted(f["user_id"].to_list()) for (g,), f in got.group_by("artist_group")}
    assert users == {"seen_artist": ["u1", "u2"], "new_artist": ["u1", "u3"], "unknown_artist": ["u3"]}


def test_read_artists(tmp_path):
    path = tmp_path / "id_information.tsv"
    path.write_text("id\tartist\tsong\talbum_name\nt1\tA\ts\tal\nt2\t\ts\tal\n")
    assert read_artists(path).rows() == [("t1", "A")]
    path.write_text("id\tsong\nt1\ts\n")
    with pytest.raises(ValueError, match="id_information.tsv.*artist"):
        read_artists(path)

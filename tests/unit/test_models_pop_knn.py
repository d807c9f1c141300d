"""Popularity and KNN on hand-made data where the right lists are known."""

from __future__ import annotations

import numpy as np
from _tiny_split import split, one_thread  # noqa: F401 (autouse fixture)

from audiorec.models.knn import KNN, user_means
from audiorec.models.pop import Popularity


def test_popularity_ranks_by_listeners_without_seen_items_ties_by_track_id():
    data = split(
        train=[("u1", "a"), ("u2", "a"), ("u3", "a"), ("u1", "b"), ("u2", "b"), ("u3", "c", 0, 50), ("u1", "d"), ("u2", "e")],
        val=[("u1", "c"), ("u3", "e")],
    )
    top = Popularity(data).factors().rank(np.arange(3), data.train, 10)
    names = [[data.track_ids[i] for i in row if i >= 0] for row in top.items]
    # listeners: a 3, b 2, c/d/e 1 (ties in track-id order)
    assert names == [["c", "e"], ["c", "d"], ["b", "d", "e"]]
    by_plays = Popularity(data, count="plays").factors().rank(np.array([1]), data.train, 2)
    assert [data.track_ids[i] for i in by_plays.items[0]] == ["c", "d"]  # c: 50 plays


def test_knn_user_is_mean_of_train_tracks_ranked_by_cosine():
    data = split(train=[("u1", "t0"), ("u1", "t1"), ("u2", "t2")], val=[("u1", "t3")])
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [10.0, 1.0], [1.0, 1.2]], dtype=np.float32)  # t0..t3
    np.testing.assert_allclose(user_means(data, vectors), [[0.5, 0.5], [10.0, 1.0]])
    knn = KNN(data, vectors)
    top = knn.factors().rank(np.arange(2), data.train, 5)
    # u1 ~ (1, 1): t3 (cos 0.996) before t2 (cos 0.77); u2 ~ (10, 1): t0 (0.995), t3, t1
    assert top.items.tolist() == [[3, 2, -1, -1], [0, 3, 1, -1]]
    expected = (vectors[3] @ [0.5, 0.5]) / (np.linalg.norm(vectors[3]) * np.linalg.norm([0.5, 0.5]))
    np.testing.assert_allclose(top.scores[0, 0], expected, rtol=1e-6)


def test_user_means_match_a_loop_on_random_data():
    rng = np.random.default_rng(0)
    rows = [(f"u{rng.integers(0, 7)}", f"t{rng.integers(0, 20):02d}") for _ in range(60)]
    rows = list(dict.fromkeys(rows))
    data = split(train=rows)
    vectors = rng.standard_normal((data.n_items, 4)).astype(np.float32)
    means = user_means(data, vectors)
    for u, uid in enumerate(data.user_ids):
        items = [data.track_ids.index(t) for (x, t) in rows if x == uid]
        np.testing.assert_allclose(means[u], vectors[items].mean(axis=0), rtol=1e-5, atol=1e-6)

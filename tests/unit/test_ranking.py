"""Top-K ranking against a brute-force reference: ties, chunk boundaries, seen items, short lists."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from audiorec.evaluation.ranking import Seen, chunk_size, hit_matrix, recommendations_frame, top_k


def brute_force(users, items, seen_sets, k, bias=None, cosine=False):
    """Per user: score every item in float64, drop seen, sort by (-score, item index)."""
    u = users.astype(np.float64)
    it = items.astype(np.float64)
    if cosine:
        u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
        it = it / np.maximum(np.linalg.norm(it, axis=1, keepdims=True), 1e-12)
    scores = u @ it.T + (0 if bias is None else bias)
    out = []
    for row, seen in zip(scores, seen_sets, strict=True):
        cands = [(-s, i) for i, s in enumerate(row) if i not in seen]
        out.append([i for _, i in sorted(cands)[:k]])
    return out


def csr(seen_sets):
    indptr = np.concatenate([[0], np.cumsum([len(s) for s in seen_sets])]).astype(np.int64)
    indices = np.array([i for s in seen_sets for i in sorted(s)], dtype=np.int64)
    return Seen(indptr, indices)


def random_case(rng, n_users=13, n_items=29, dim=3, max_seen=8, integer=True):
    # small integer factors make many exact ties, which is what tie-breaking must survive
    users = rng.integers(-2, 3, (n_users, dim)) if integer else rng.standard_normal((n_users, dim))
    items = rng.integers(-2, 3, (n_items, dim)) if integer else rng.standard_normal((n_items, dim))
    seen_sets = [set(rng.choice(n_items, rng.integers(0, max_seen + 1), replace=False).tolist()) for _ in range(n_users)]
    return users.astype(np.float32), items.astype(np.float32), seen_sets


@pytest.mark.parametrize("chunk", [1, 2, 5, 13, 100])
@pytest.mark.parametrize("k", [1, 4, 10])
def test_matches_brute_force_with_ties_at_every_chunk_size(chunk, k):
    rng = np.random.default_rng(chunk * 100 + k)
    users, items, seen_sets = random_case(rng)
    top = top_k(torch.from_numpy(users), torch.from_numpy(items), np.arange(len(users)), csr(seen_sets), k, users_per_chunk=chunk)
    expected = brute_force(users, items, seen_sets, k)
    assert [row[row >= 0].tolist() for row in top.items] == expected
    # scores are the items' scores, in non-increasing order
    for row, s, u in zip(top.items, top.scores, users, strict=True):
        np.testing.assert_allclose(s, items[row] @ u, rtol=1e-6)
        assert np.all(np.diff(s) <= 0)


def test_cosine_and_bias_match_brute_force():
    rng = np.random.default_rng(7)
    users, items, seen_sets = random_case(rng, integer=False)
    bias = rng.standard_normal(len(items)).astype(np.float32)
    top = top_k(
        torch.from_numpy(users), torch.from_numpy(items), np.arange(len(users)), csr(seen_sets), 6,
        item_bias=torch.from_numpy(bias), cosine=True, users_per_chunk=4,
    )
    assert [row.tolist() for row in top.items] == brute_force(users, items, seen_sets, 6, bias=bias, cosine=True)


def test_seen_items_never_recommended_and_short_lists_when_few_candidates():
    users = np.ones((3, 2), dtype=np.float32)
    items = np.arange(10, dtype=np.float32).reshape(5, 2)
    seen_sets = [{0, 1, 2}, set(), {0, 1, 2, 3, 4}]
    top = top_k(torch.from_numpy(users), torch.from_numpy(items), np.arange(3), csr(seen_sets), 4)
    assert top.items[0].tolist() == [4, 3, -1, -1]  # only two candidates left
    assert top.items[1].tolist() == [4, 3, 2, 1]
    assert top.items[2].tolist() == [-1, -1, -1, -1]  # everything heard: an empty list
    assert top.lengths.tolist() == [2, 4, 0]
    for row, seen in zip(top.items, seen_sets, strict=True):
        assert not set(row[row >= 0].tolist()) & seen


def test_k_larger_than_catalogue():
    top = top_k(torch.ones(2, 1), torch.tensor([[1.0], [3.0], [2.0]]), np.arange(2), csr([set(), {1}]), 10)
    assert top.items.shape == (2, 3)
    assert top.items.tolist() == [[1, 2, 0], [2, 0, -1]]


def test_all_ties_break_by_lower_index_at_chunk_boundaries():
    # every item scores the same: every user must get items 0..k-1 minus seen, in index order
    seen_sets = [{0}, {1, 3}, set(), {2}]
    top = top_k(torch.zeros(4, 2), torch.zeros(9, 2), np.arange(4), csr(seen_sets), 4, users_per_chunk=3)
    assert top.items.tolist() == [[1, 2, 3, 4], [0, 2, 4, 5], [0, 1, 2, 3], [0, 1, 3, 4]]


def test_callable_user_factors_and_user_subset():
    rng = np.random.default_rng(3)
    users, items, seen_sets = random_case(rng, integer=False)
    subset = np.array([11, 2, 5])
    calls = []

    def factors(idx):
        calls.append(idx.tolist())
        return torch.from_numpy(users)[idx]

    a = top_k(factors, torch.from_numpy(items), subset, csr(seen_sets), 5, users_per_chunk=2)
    b = top_k(torch.from_numpy(users), torch.from_numpy(items), subset, csr(seen_sets), 5)
    assert calls == [[11, 2], [5]]
    np.testing.assert_array_equal(a.items, b.items)
    assert a.items.tolist() == [brute_force(users[[u]], items, [seen_sets[u]], 5)[0] for u in subset]


def test_non_finite_input_is_an_error():
    items = torch.ones(4, 2)
    with pytest.raises(ValueError, match="non-finite"):
        top_k(torch.tensor([[float("nan"), 1.0]]), items, np.arange(1), csr([set()]), 2)
    with pytest.raises(ValueError, match="non-finite"):
        top_k(torch.ones(1, 2), torch.tensor([[1.0, float("inf")]]), np.arange(1), csr([set()]), 1)


def test_chunk_size_bounds_memory():
    # 56k items with the default budget: a few hundred users per chunk, never zero
    assert 100 < chunk_size(56_193) < 1000
    assert chunk_size(10**12) == 1


def test_recommendations_frame_contract():
    top = top_k(torch.ones(2, 1), torch.tensor([[1.0], [3.0], [2.0]]), np.array([1, 0]), csr([{1}, set()]), 2)
    df = recommendations_frame(top, ["u0", "u1"], ["t0", "t1", "t2"])
    assert df.schema == {"user_id": pl.String, "track_id": pl.String, "rank": pl.Int32, "score": pl.Float32}
    assert df.rows() == [("u1", "t1", 1, 3.0), ("u1", "t2", 2, 2.0), ("u0", "t2", 1, 2.0), ("u0", "t0", 2, 1.0)]


def test_hit_matrix_against_sets():
    rng = np.random.default_rng(11)
    users, items, seen_sets = random_case(rng, integer=False)
    relevant_sets = [set(rng.choice(len(items), 4, replace=False).tolist()) for _ in users]
    top = top_k(torch.from_numpy(users), torch.from_numpy(items), np.arange(len(users)), csr(seen_sets), 7)
    hits = hit_matrix(top, csr(relevant_sets))
    expected = [[int(i) in relevant_sets[u] and i >= 0 for i in row] for u, row in enumerate(top.items)]
    assert hits.tolist() == expected

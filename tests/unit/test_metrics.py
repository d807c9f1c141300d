"""Ranking metrics against a plain-Python reference, hand-computed cases and ranx."""

from __future__ import annotations

import logging
import math
import random

import numpy as np
import polars as pl
import pytest
import torch

from audiorec.evaluation.metrics import METRICS, RecsError, per_user_metrics, ranking_metrics


def reference_metrics(ranked: list[str], relevant: set[str], k: int) -> dict[str, float]:
    """Textbook definitions, one user at a time (ranked[i] is the item at rank i+1)."""
    top = ranked[:k]
    hit_ranks = [i + 1 for i, item in enumerate(top) if item in relevant]
    n_rel = len(relevant)
    dcg = sum(1.0 / math.log2(r + 1) for r in hit_ranks)
    idcg = sum(1.0 / math.log2(r + 1) for r in range(1, min(n_rel, k) + 1))
    return {
        "hitrate": float(bool(hit_ranks)),
        "recall": len(hit_ranks) / n_rel if n_rel else 0.0,
        "ndcg": dcg / idcg if idcg else 0.0,
        "mrr": 1.0 / hit_ranks[0] if hit_ranks else 0.0,
        "precision": len(hit_ranks) / k,
    }


def random_case(seed: int, n_users: int = 40, n_items: int = 60, k: int = 10):
    """Random recs (some users with fewer than k, some without any) and truth."""
    rng = random.Random(seed)
    items = [f"t{i}" for i in range(n_items)]
    lists: dict[str, list[str]] = {}
    truth: dict[str, set[str]] = {}
    for u in range(n_users):
        user = f"u{u:03d}"
        truth[user] = set(rng.sample(items, rng.randint(1, 25)))
        n = rng.choice([0, 3, k, k, k])
        if n:
            lists[user] = rng.sample(items, n)
    recs = pl.DataFrame(
        [
            {"user_id": user, "track_id": t, "rank": i + 1, "score": float(len(ranked) - i)}
            for user, ranked in lists.items()
            for i, t in enumerate(ranked)
        ],
        schema={"user_id": pl.String, "track_id": pl.String, "rank": pl.Int64, "score": pl.Float64},
    )
    # Truth rows repeat (user, track) with different timestamps in a raw log; a split part
    # holds each pair once, but relevance must be deduplicated either way.
    truth_rows = [{"user_id": u, "track_id": t, "plays": 1} for u, ts in truth.items() for t in sorted(ts)]
    truth_rows += truth_rows[:15]
    return recs, pl.DataFrame(truth_rows), lists, truth


def test_ranking_metrics_hand_computed():
    # relevant = 3 items; hits at ranks 2 and 4 of k=5.
    hits = torch.tensor([[False, True, False, True, False], [False] * 5])
    out = ranking_metrics(hits, torch.tensor([3, 2]), k=5)
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert out["hitrate"].tolist() == [1.0, 0.0]
    assert out["recall"].tolist() == pytest.approx([2 / 3, 0.0])
    assert out["precision"].tolist() == pytest.approx([2 / 5, 0.0])
    assert out["mrr"].tolist() == pytest.approx([0.5, 0.0])
    assert out["ndcg"].tolist() == pytest.approx([dcg / idcg, 0.0])


def test_ranking_metrics_ideal_dcg_capped_at_k_and_short_lists():
    # 10 relevant items, k=2, both recommended items hit: a perfect list scores NDCG 1.
    out = ranking_metrics(torch.tensor([[True, True]]), torch.tensor([10]), k=2)
    assert out["ndcg"].item() == pytest.approx(1.0)
    assert out["recall"].item() == pytest.approx(0.2)
    # A list shorter than k: precision still divides by k.
    out = ranking_metrics(torch.tensor([[True]]), torch.tensor([1]), k=4)
    assert out["precision"].item() == pytest.approx(0.25)
    assert out["ndcg"].item() == pytest.approx(1.0)


def test_ranking_metrics_no_relevant_items_scores_zero():
    out = ranking_metrics(torch.zeros((1, 3), dtype=torch.bool), torch.tensor([0]), k=3)
    assert all(out[m].item() == 0.0 for m in METRICS)
    assert not any(torch.isnan(v).any() for v in out.values())


def test_ranking_metrics_rejects_bad_shapes():
    with pytest.raises(ValueError, match="k must be"):
        ranking_metrics(torch.zeros((1, 3), dtype=torch.bool), torch.tensor([1]), k=0)
    with pytest.raises(ValueError, match="expected hits"):
        ranking_metrics(torch.zeros((2, 3), dtype=torch.bool), torch.tensor([1]), k=3)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_user_metrics_matches_python_reference(seed):
    k = 10
    recs, truth_frame, lists, truth = random_case(seed, k=k)
    out = per_user_metrics(recs.sample(fraction=1.0, shuffle=True, seed=seed), truth_frame, k)
    assert out["user_id"].to_list() == sorted(truth)
    for row in out.iter_rows(named=True):
        expected = reference_metrics(lists.get(row["user_id"], []), truth[row["user_id"]], k)
        for m in METRICS:
            assert row[m] == pytest.approx(expected[m], abs=1e-12), (row["user_id"], m)
        assert row["n_relevant"] == len(truth[row["user_id"]])
        assert row["n_recs"] == len(lists.get(row["user_id"], []))


def test_per_user_metrics_matches_ranx():
    ranx = pytest.importorskip("ranx")
    k = 10
    recs, truth_frame, lists, truth = random_case(7, n_users=80, k=k)
    out = per_user_metrics(recs, truth_frame, k).filter(pl.col("n_recs") > 0)
    qrels = ranx.Qrels({u: {t: 1 for t in truth[u]} for u in lists})
    run = ranx.Run({u: {t: float(k - i) for i, t in enumerate(ranked)} for u, ranked in lists.items()})
    names = {"hitrate": "hit_rate", "recall": "recall", "ndcg": "ndcg", "mrr": "mrr", "precision": "precision"}
    ranx.evaluate(qrels, run, [f"{v}@{k}" for v in names.values()], return_mean=False, make_comparable=True)
    for ours, theirs in names.items():
        ranx_scores = run.scores[f"{theirs}@{k}"]
        expected = np.array([ranx_scores[u] for u in out["user_id"]])
        np.testing.assert_allclose(out[ours].to_numpy(), expected, atol=1e-9, err_msg=ours)


def test_rank_is_authoritative_over_score_ties_and_order():
    truth = pl.DataFrame({"user_id": ["a"], "track_id": ["x"]})
    # All scores equal and rows out of order: the hit is at rank 3 because rank says so.
    recs = pl.DataFrame(
        {"user_id": ["a"] * 3, "track_id": ["x", "y", "z"], "rank": [3, 1, 2], "score": [0.5, 0.5, 0.5]}
    )
    out = per_user_metrics(recs, truth, k=3)
    assert out["mrr"].item() == pytest.approx(1 / 3)
    assert out["ndcg"].item() == pytest.approx(1 / math.log2(4))


def test_users_without_recs_score_zero_and_foreign_users_are_ignored(caplog):
    truth = pl.DataFrame({"user_id": ["a", "b"], "track_id": ["x", "y"]})
    recs = pl.DataFrame(
        {"user_id": ["a", "zz", "zz"], "track_id": ["x", "x", "y"], "rank": [1, 1, 2], "score": [1.0, 1.0, 0.5]}
    )
    with caplog.at_level(logging.INFO, logger="audiorec.evaluation.metrics"):
        out = per_user_metrics(recs, truth, k=5, source="recs_test.parquet")
    assert out["user_id"].to_list() == ["a", "b"]
    assert out["hitrate"].to_list() == [1.0, 0.0]
    assert out["ndcg"].to_list() == [1.0, 0.0]
    assert "ignored 2 rows of 1 user(s)" in caplog.text
    assert "1 of 2 users have no recommendations" in caplog.text


def test_ranks_beyond_k_are_cut_and_truth_is_deduplicated():
    truth = pl.DataFrame({"user_id": ["a", "a", "a"], "track_id": ["x", "x", "y"]})
    recs = pl.DataFrame({"user_id": ["a", "a"], "track_id": ["q", "x"], "rank": [1, 2]})
    out = per_user_metrics(recs, truth, k=1)
    assert out["hitrate"].item() == 0.0
    assert out["n_relevant"].item() == 2
    assert out["n_recs"].item() == 1
    out = per_user_metrics(recs, truth, k=2)
    assert out["recall"].item() == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ({"user_id": ["a", "a"], "track_id": ["x", "y"], "rank": [1, 1]}, "repeated rank"),
        ({"user_id": ["a", "a"], "track_id": ["x", "x"], "rank": [1, 2]}, "repeated track"),
        ({"user_id": ["a"], "track_id": ["x"], "rank": [0]}, "1-based"),
        ({"user_id": ["a"], "track_id": ["x"], "rank": [1.0]}, "must be integer"),
        ({"user_id": ["a"], "track_id": ["x"]}, r"lacks column\(s\) \['rank'\]"),
        ({"user_id": ["a"], "track_id": [None], "rank": [1]}, "null `track_id`"),
    ],
)
def test_bad_recs_are_errors_naming_the_file(rows, match):
    truth = pl.DataFrame({"user_id": ["a"], "track_id": ["x"]})
    with pytest.raises(RecsError, match=match) as err:
        per_user_metrics(pl.DataFrame(rows), truth, k=3, source="runs/knn/mfcc/seed0/recs_val.parquet")
    assert "recs_val.parquet" in str(err.value) or "lacks" not in match


def test_integer_ids_match_string_ids():
    truth = pl.DataFrame({"user_id": ["1"], "track_id": ["7"]})
    recs = pl.DataFrame({"user_id": [1], "track_id": [7], "rank": [1]})
    assert per_user_metrics(recs, truth, k=2)["hitrate"].item() == 1.0


def test_empty_recs_score_everyone_zero():
    truth = pl.DataFrame({"user_id": ["a", "b"], "track_id": ["x", "y"]})
    recs = pl.DataFrame(schema={"user_id": pl.String, "track_id": pl.String, "rank": pl.Int64})
    out = per_user_metrics(recs, truth, k=3)
    assert out.select(METRICS).sum_horizontal().to_list() == [0.0, 0.0]

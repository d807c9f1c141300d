"""Evaluation cost at paper scale against the bare cost of ranking.

Issue 7's goal: evaluating a run (recs -> per-user metrics) at Music4All-Onion scale
(about 6k evaluated users, 56k tracks, K=50) stays within 1.5x of the bare cost of the
score matrix product + top-k that any ranking over all items pays. This measures:

- `bound`:   U[users, dim] @ I[items, dim]^T in user chunks, then top-k per row (float32,
             torch, no seen-item removal, no I/O): the floor of any exact ranking.
- `metrics`: per_user_metrics on in-memory frames (string ids, as the run files hold).
- `rule`:    what rule evaluate does: read recs + split part from Parquet, per_user_metrics,
             write the metrics Parquet.

With --end-to-end (needs src/audiorec/evaluation/ranking.py from the recommenders) it also
times the shared ranking (scores, seen-item removal, exact top-k with tie-breaking, the recs
frame) followed by the metrics, against the same bound.
With --significance it also times the report's aggregation and tests at paper scale
(pop + knn/shallow/bert4rec with the paper's 7 backends, + random for shallow/bert4rec).

Usage: python benchmarks/evaluate.py [--users 6092 --items 56193 --k 50 --dim 256] [--significance]
Prints a Markdown table (benchmarks/RESULTS.md records results and the machine).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from audiorec.evaluation.metrics import METRICS, per_user_metrics  # noqa: E402
from audiorec.report.aggregate import Catalogue, ReportSettings, compare, summarise  # noqa: E402

PAPER_BACKENDS = ["mfcc", "musicnn", "mert", "music2vec", "musicfm", "encodecmae", "jukebox"]


def make_frames(users: int, items: int, k: int, relevant_mean: float, hit_share: float, seed: int):
    """Truth (distinct relevant tracks per user) and top-k recs with a planted share of hits."""
    rng = np.random.default_rng(seed)
    n_rel = np.maximum(1, rng.poisson(relevant_mean, users))
    user_ids = np.array([f"user{u:06d}" for u in range(users)])
    track_ids = np.array([f"track{t:06d}" for t in range(items)])
    truth_u, truth_t, rec_u, rec_t, rec_r = [], [], [], [], []
    for u in range(users):
        picks = rng.choice(items, size=n_rel[u] + k, replace=False)
        relevant, others = picks[: n_rel[u]], picks[n_rel[u] :]
        truth_u.append(np.full(n_rel[u], u))
        truth_t.append(relevant)
        ranked = others[:k].copy()
        hits = rng.random(k) < hit_share
        n_hits = min(int(hits.sum()), n_rel[u])
        ranked[np.flatnonzero(hits)[:n_hits]] = relevant[:n_hits]
        rec_u.append(np.full(k, u))
        rec_t.append(ranked)
        rec_r.append(np.arange(1, k + 1))
    truth = pl.DataFrame(
        {"user_id": user_ids[np.concatenate(truth_u)], "track_id": track_ids[np.concatenate(truth_t)]}
    ).with_columns(pl.lit(1).alias("plays"))
    ranks = np.concatenate(rec_r)
    recs = pl.DataFrame(
        {
            "user_id": user_ids[np.concatenate(rec_u)],
            "track_id": track_ids[np.concatenate(rec_t)],
            "rank": ranks.astype(np.int64),
            "score": (1.0 / ranks).astype(np.float32),
        }
    )
    return recs, truth


def timed(fn, repeat: int) -> float:
    """Best of `repeat` wall-clock runs (the machine is shared: the minimum is the least disturbed)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bound(users: int, items: int, dim: int, k: int, chunk: int, seed: int) -> float:
    gen = torch.Generator().manual_seed(seed)
    user_vecs = torch.randn(users, dim, generator=gen)
    item_vecs = torch.randn(items, dim, generator=gen)

    def run() -> None:
        for start in range(0, users, chunk):
            scores = user_vecs[start : start + chunk] @ item_vecs.T
            torch.topk(scores, k, dim=1)

    return run


def significance_timing(users: int, n_permutations: int, seed: int) -> tuple[float, float, int]:
    """(summary seconds, tests seconds, rows) of the report on random seed-averaged per-user metrics."""
    catalogue = Catalogue(
        {"pop": "pop", "knn": "knn", "shallow": "shallow", "bert4rec": "bert4rec"}, {b: b for b in PAPER_BACKENDS}
    )
    runs = {"pop": ["none"], "knn": PAPER_BACKENDS, "shallow": [*PAPER_BACKENDS, "random"]}
    runs["bert4rec"] = runs["shallow"]
    rng = np.random.default_rng(seed)
    user_ids = [f"user{u:06d}" for u in range(users)]
    frames = [
        pl.DataFrame(
            {
                "model": model,
                "backend": backend,
                "split": split,
                "user_id": user_ids,
                **{m: (rng.random(users) < 0.3) * rng.random(users) for m in METRICS},
                "n_seeds": 1,
            }
        )
        for model, backends in runs.items()
        for backend in backends
        for split in ("val", "test")
    ]
    averaged = pl.concat(frames)
    settings = ReportSettings(n_permutations=n_permutations)
    start = time.perf_counter()
    summary = summarise(averaged, settings, catalogue)
    mid = time.perf_counter()
    sig = compare(averaged, summary, settings, catalogue)
    return mid - start, time.perf_counter() - mid, len(sig)


def end_to_end(args: argparse.Namespace, dim: int, truth: pl.DataFrame) -> tuple[float, float] | None:
    """(ranking seconds, ranking + metrics seconds) with the recommenders' ranking, or None without it."""
    try:
        from audiorec.evaluation.ranking import Seen, recommendations_frame, top_k
    except ImportError:
        return None
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    user_vecs = torch.randn(args.users, dim, generator=gen)
    item_vecs = torch.randn(args.items, dim, generator=gen)
    n_seen = np.maximum(1, rng.poisson(args.seen_mean, args.users))
    indptr = np.concatenate([[0], np.cumsum(n_seen)])
    indices = np.concatenate([np.sort(rng.choice(args.items, size=n, replace=False)) for n in n_seen])
    seen = Seen(indptr=indptr, indices=indices)
    user_ids = [f"user{u:06d}" for u in range(args.users)]
    track_ids = [f"track{t:06d}" for t in range(args.items)]
    users = np.arange(args.users)
    result: dict[str, pl.DataFrame] = {}

    def rank() -> None:
        top = top_k(user_vecs, item_vecs, users, seen, args.k)
        result["recs"] = recommendations_frame(top, user_ids, track_ids)

    rank_s = timed(rank, max(1, args.repeat - 1))
    metrics_s = timed(lambda: per_user_metrics(result["recs"], truth, args.k), args.repeat)
    return rank_s, rank_s + metrics_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=6092)
    parser.add_argument("--items", type=int, default=56193)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--dim", type=int, nargs="+", default=[256])
    parser.add_argument("--relevant-mean", type=float, default=22.0, help="mean relevant tracks per user (paper ~22)")
    parser.add_argument("--hit-share", type=float, default=0.01)
    parser.add_argument("--chunk", type=int, default=1024, help="users per score chunk of the bound")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--end-to-end", action="store_true", help="also time ranking.py's top_k + metrics")
    parser.add_argument("--seen-mean", type=float, default=300.0, help="mean train tracks per user (paper ~300)")
    parser.add_argument("--significance", action="store_true", help="also time metrics.csv + significance.csv")
    parser.add_argument("--n-permutations", type=int, default=10000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    recs, truth = make_frames(args.users, args.items, args.k, args.relevant_mean, args.hit_share, args.seed)
    rows = []
    metrics_s = timed(lambda: per_user_metrics(recs, truth, args.k), args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        recs_path, truth_path, out_path = (Path(tmp) / n for n in ("recs.parquet", "truth.parquet", "metrics.parquet"))
        recs.write_parquet(recs_path)
        truth.write_parquet(truth_path)

        def rule() -> None:
            m = per_user_metrics(pl.read_parquet(recs_path), pl.read_parquet(truth_path), args.k)
            m.write_parquet(out_path)

        rule_s = timed(rule, args.repeat)
    for dim in args.dim:
        bound_s = timed(bound(args.users, args.items, dim, args.k, args.chunk, args.seed), max(1, args.repeat - 1))
        rows.append((dim, bound_s))

    print(
        f"users={args.users} items={args.items} k={args.k} recs rows={len(recs)} truth rows={len(truth)} "
        f"threads={args.threads} torch={torch.__version__} polars={pl.__version__} "
        f"cpu={platform.processor() or platform.machine()} cores={os.cpu_count()}"
    )
    print()
    print("| step | dim | seconds (best of runs) | vs bound | (bound + metrics) / bound |")
    print("|---|---|---|---|---|")
    for dim, bound_s in rows:
        print(f"| bound: matmul + top-{args.k} | {dim} | {bound_s:.3f} | 1.00 | |")
        e2e = end_to_end(args, dim, truth) if args.end_to_end else None
        if args.end_to_end and e2e is None:
            print("| end to end | – | audiorec.evaluation.ranking not available | | |")
        if e2e is not None:
            print(f"| ranking.top_k + recs frame | {dim} | {e2e[0]:.3f} | {e2e[0] / bound_s:.3f} | |")
            print(f"| ranking + metrics (end to end) | {dim} | {e2e[1]:.3f} | {e2e[1] / bound_s:.3f} | |")
        print(f"| metrics (in memory) | – | {metrics_s:.3f} | {metrics_s / bound_s:.3f} | {(bound_s + metrics_s) / bound_s:.3f} |")
        print(f"| rule evaluate (Parquet in/out) | – | {rule_s:.3f} | {rule_s / bound_s:.3f} | {(bound_s + rule_s) / bound_s:.3f} |")
    if args.significance:
        summary_s, tests_s, n_rows = significance_timing(args.users, args.n_permutations, args.seed)
        print()
        print(f"| report step ({args.users} users, 3 models x 7-8 backends + pop, 2 splits) | seconds |")
        print("|---|---|")
        print(f"| metrics.csv (means + t intervals) | {summary_s:.2f} |")
        print(f"| significance.csv ({n_rows} rows, sign-flip B={args.n_permutations} + paired t, Holm) | {tests_s:.2f} |")


if __name__ == "__main__":
    main()

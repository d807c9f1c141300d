"""Cost of the beyond-accuracy metrics per run at paper scale (issue 18).

Goal: at Music4All-Onion's size (about 6k evaluated users, 56k tracks, K=50) the extra
metrics add well under a minute per run on 2 cores. Measured on synthetic inputs of that
shape (the values do not matter, only the sizes):

- `per_user`:  per_user_beyond (novelty, ARP, popularity lift, genre diversity) on in-memory frames;
- `catalogue`: catalogue_metrics (coverage, Gini);
- `rule`:      what rule evaluate_beyond does: read recs, part, train, catalogue and the genre
               file from disk, both computations, write both outputs;
- `artists`:   what rule evaluate_artists does in memory (cold-item splits only): the accuracy
               metrics per artist group;
- `groups`:    the report's user groups of one split for the given number of runs (summaries
               and in-group paired tests), per dataset rather than per run.

Usage: python benchmarks/beyond_metrics.py [--users 6092 --train-users 17000 --items 56193 --k 50
       --train-per-user 300 --genres 850 --runs 24]
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from audiorec.evaluation.beyond import catalogue_metrics, per_user_beyond  # noqa: E402
from audiorec.evaluation.diversity import read_genre_labels  # noqa: E402
from audiorec.evaluation.metric_names import METRICS  # noqa: E402
from audiorec.report.aggregate import Catalogue, ReportSettings, summarise  # noqa: E402
from audiorec.report.beyond import group_results, user_profiles  # noqa: E402


def make_inputs(args: argparse.Namespace, seed: int = 0):
    rng = np.random.default_rng(seed)
    tracks = np.array([f"track{t:06d}" for t in range(args.items)])
    users = np.array([f"user{u:06d}" for u in range(args.train_users)])
    # long-tail popularity: Zipf-like track weights
    weights = 1.0 / np.arange(1, args.items + 1) ** 0.9
    weights /= weights.sum()
    n_hist = np.maximum(1, rng.poisson(args.train_per_user, args.train_users))
    train_u, train_t = [], []
    for u in range(args.train_users):
        picks = np.unique(rng.choice(args.items, size=n_hist[u], p=weights))
        train_u.append(np.full(picks.size, u))
        train_t.append(picks)
    train = pl.DataFrame({"user_id": users[np.concatenate(train_u)], "track_id": tracks[np.concatenate(train_t)]})
    evaluated = users[: args.users]
    truth = pl.DataFrame(
        {"user_id": np.repeat(evaluated, 5), "track_id": tracks[rng.integers(0, args.items, 5 * args.users)]}
    ).unique()
    rec_t = np.stack([rng.choice(args.items, args.k, replace=False, p=weights) for _ in range(args.users)])
    recs = pl.DataFrame(
        {
            "user_id": np.repeat(evaluated, args.k),
            "track_id": tracks[rec_t.ravel()],
            "rank": np.tile(np.arange(1, args.k + 1), args.users).astype(np.int64),
            "score": np.zeros(args.users * args.k, dtype=np.float32),
        }
    )
    n_genres = rng.integers(1, 8, args.items)
    genres = pl.DataFrame(
        {
            "id": tracks,
            "genres": [",".join(f"genre{g}" for g in rng.choice(args.genres, n, replace=False)) for n in n_genres],
        }
    )
    catalogue = pl.DataFrame({"track_id": tracks, "cold": False, "candidate": True})
    artists = pl.DataFrame({"track_id": tracks, "artist": [f"artist{a}" for a in rng.integers(0, args.items // 8, args.items)]})
    return recs, truth, train, genres, catalogue, artists


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=6092)
    parser.add_argument("--train-users", type=int, default=17000)
    parser.add_argument("--items", type=int, default=56193)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--train-per-user", type=int, default=300)
    parser.add_argument("--genres", type=int, default=850)
    parser.add_argument("--runs", type=int, default=24, help="runs in the user-group timing (paper: 24 incl. pop)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    recs, truth, train, genre_file, catalogue, artists = make_inputs(args)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        recs.write_parquet(d / "recs.parquet")
        truth.write_parquet(d / "part.parquet")
        train.with_columns(pl.lit(1).alias("plays")).write_parquet(d / "train.parquet")
        catalogue.write_parquet(d / "catalogue.parquet")
        genre_file.write_csv(d / "id_genres.tsv", separator="\t")
        genres = read_genre_labels(d / "id_genres.tsv")

        rows.append(("per_user", timed(lambda: per_user_beyond(recs, truth, train, args.k, genres), args.repeat)))
        rows.append(("catalogue", timed(lambda: catalogue_metrics(recs, truth, catalogue, args.k), args.repeat)))

        def rule() -> None:
            r = pl.read_parquet(d / "recs.parquet")
            t = pl.read_parquet(d / "part.parquet")
            tr = pl.read_parquet(d / "train.parquet", columns=["user_id", "track_id"])
            g = read_genre_labels(d / "id_genres.tsv")
            per_user_beyond(r, t, tr, args.k, g).write_parquet(d / "beyond.parquet")
            pl.DataFrame([catalogue_metrics(r, t, pl.read_parquet(d / "catalogue.parquet"), args.k)]).write_csv(d / "run.csv")

        rows.append(("rule (evaluate_beyond)", timed(rule, args.repeat)))
        try:
            from audiorec.evaluation.artists import per_user_artist_metrics

            rows.append(("artists (evaluate_artists)", timed(lambda: per_user_artist_metrics(recs, truth, train, artists, args.k), args.repeat)))
        except ImportError:  # torch absent
            pass

        # the report's user groups for one split: `runs` runs' seed-averaged metrics of the same users
        rng = np.random.default_rng(1)
        users = truth["user_id"].unique().sort()
        names = [("pop", "none")] + [(m, f"b{i}") for m in ("knn", "shallow", "bert4rec") for i in range((args.runs - 1) // 3)]
        averaged = pl.concat(
            [
                pl.DataFrame({"model": m, "backend": b, "split": "test", "user_id": users,
                              **{x: rng.random(len(users)) for x in METRICS}, "n_seeds": 1})
                for m, b in names
            ]
        )  # fmt: skip
        settings = ReportSettings(k=args.k)
        catalog = Catalogue(model_types={"pop": "pop", "knn": "knn", "shallow": "shallow", "bert4rec": "bert4rec"}, backend_types={})
        overall = summarise(averaged, settings, catalog)
        profiles = user_profiles(d / "train.parquet")
        rows.append((f"groups (report, {len(names)} runs, one split)", timed(lambda: group_results(averaged, overall, profiles, settings, catalog), 1)))

    print(f"users {args.users}, train users {args.train_users} ({len(train):,} train rows), items {args.items}, K {args.k}, "
          f"{args.genres} genres; {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"POLARS_MAX_THREADS={os.environ.get('POLARS_MAX_THREADS', '-')}")  # fmt: skip
    print("\n| step | seconds (best of runs) |\n|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.2f} |")


if __name__ == "__main__":
    main()

"""How much of the synthetic log each kind of signal explains: a sanity check of `audible_share`.

    python benchmarks/synthetic_signal.py                       # default dataset, log only
    python benchmarks/synthetic_signal.py --set audible_share=0.9

Generates the dataset's tables (no audio), applies the paper's split (train = 12 months
before 2020-02-20; held out = pairs new to the user from then on, users and tracks in
train; val and test not separated here) and scores simple recommenders on the held-out
pairs with HitRate@K and Recall@K over all train tracks, the user's train tracks removed:

* pop: train play counts (and "recent pop", the last four weeks of train);
* oracle KNN: cosine between a track's oracle vector (src/audiorec/backends/oracle.py) and the
  mean of the user's train tracks' vectors: the best a content-only KNN could do;
* item CF: item-item cosine on the binary user x track train matrix: collaborative only;
* CF + oracle: the sum of the two score matrices, each standardised per user.

If the hybrid beats both, each single source misses something the other has, which is
what the default `audible_share` is meant to guarantee.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from audiorec.backends.oracle import OracleBackend  # noqa: E402
from audiorec.data.synthetic import generate_dataset  # noqa: E402


def main() -> None:
    import polars as pl

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", nargs="*", default=[], metavar="KNOB=VALUE")
    parser.add_argument("--k", type=int, default=50)
    args = parser.parse_args()
    knobs = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        generate_dataset(knobs, folder, threads=2, audio=False)
        log = pl.read_csv(folder / "userid_trackid_timestamp.tsv", separator="\t", try_parse_dates=True)
        start, train_from = dt.datetime(2020, 2, 20), dt.datetime(2019, 2, 20)
        train = log.filter((pl.col("timestamp") >= train_from) & (pl.col("timestamp") < start))
        users = train["user_id"].unique().sort().to_list()
        items = train["track_id"].unique().sort().to_list()
        oracle, _ = OracleBackend({"type": "oracle"}).compute(folder, items)
    uidx = {u: i for i, u in enumerate(users)}
    iidx = {t: i for i, t in enumerate(items)}
    seen = log.filter(pl.col("timestamp") < start).select("user_id", "track_id").unique()
    held = (
        log.filter(pl.col("timestamp") >= start)
        .join(seen, on=["user_id", "track_id"], how="anti")
        .filter(pl.col("user_id").is_in(users) & pl.col("track_id").is_in(items))
        .select("user_id", "track_id")
        .unique()
    )
    counts = train.group_by("user_id", "track_id").len()
    plays = np.zeros((len(users), len(items)))
    plays[[uidx[u] for u in counts["user_id"]], [iidx[t] for t in counts["track_id"]]] = counts["len"].to_numpy()
    listened = (plays > 0).astype(np.float64)
    test_users = sorted(held["user_id"].unique().to_list())
    rows = np.array([uidx[u] for u in test_users])
    truth_frame = held.group_by("user_id").agg(pl.col("track_id"))
    truth_of = dict(zip(truth_frame["user_id"].to_list(), truth_frame["track_id"].to_list(), strict=True))
    truth = [{iidx[t] for t in truth_of[u]} for u in test_users]

    def evaluate(scores: np.ndarray) -> tuple[float, float]:
        scores = np.where(listened[rows] > 0, -np.inf, scores)
        top = np.argpartition(-scores, args.k, axis=1)[:, : args.k]
        hits = np.array([len(t & set(r)) for t, r in zip(truth, top, strict=True)])
        return float(np.mean(hits > 0)), float(np.mean(hits / np.array([len(t) for t in truth])))

    def z(s: np.ndarray) -> np.ndarray:
        return (s - s.mean(axis=1, keepdims=True)) / (s.std(axis=1, keepdims=True) + 1e-12)

    recent = train.filter(pl.col("timestamp") >= start - dt.timedelta(weeks=4)).group_by("track_id").len()
    recent_pop = np.zeros(len(items))
    recent_pop[[iidx[t] for t in recent["track_id"]]] = recent["len"].to_numpy()
    vectors = oracle[:, 0] / np.linalg.norm(oracle[:, 0], axis=1, keepdims=True)
    profile = listened[rows] @ vectors
    content = (profile / np.linalg.norm(profile, axis=1, keepdims=True)) @ vectors.T
    norm = listened / np.maximum(np.linalg.norm(listened, axis=0, keepdims=True), 1e-12)
    similarity = norm.T @ norm
    np.fill_diagonal(similarity, 0.0)
    cf = listened[rows] @ similarity
    results = {
        "pop": np.tile(listened.sum(axis=0), (len(rows), 1)),
        "recent pop (last 4 weeks)": np.tile(recent_pop, (len(rows), 1)),
        "oracle KNN (content only)": content,
        "item CF (collaborative only)": cf,
        "item CF + oracle": z(cf) + z(content),
    }
    print(f"knobs: {knobs or 'defaults'}; {len(rows)} held-out users, {held.height} pairs, {len(items)} tracks, K={args.k}\n")
    print(f"| scorer | HitRate@{args.k} | Recall@{args.k} |\n|---|---|---|")
    for name, scores in results.items():
        hr, recall = evaluate(scores)
        print(f"| {name} | {hr:.3f} | {recall:.3f} |")


if __name__ == "__main__":
    main()

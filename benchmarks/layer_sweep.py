"""Cost of a KNN layer sweep at (about) Music4All-Onion scale, from a random cache.

Writes a random split (users with `--history` train tracks each, val/test users with a few
new tracks) and a float16 `/layers` cache of `--layers` x `--dim`, then runs
`audiorec.analysis.layer_sweep.sweep_layers` with KNN and prints, per layer, the time to read
it from the cache and to evaluate it (ranking of val + test users over all tracks, per-user
metrics), plus the job's peak RSS. Usage:

    python benchmarks/layer_sweep.py [--tracks 56193 --users 17053 --eval-users 6092 --layers 4 --dim 768]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from audiorec.analysis.layer_sweep import SweepPaths, sweep_layers  # noqa: E402
from audiorec.extraction.store import read_layers, write_embeddings  # noqa: E402
from audiorec.runtime import set_threads  # noqa: E402


def write_inputs(root: Path, args: argparse.Namespace) -> None:
    rng = np.random.default_rng(0)
    tracks = np.array([f"t{i:06d}" for i in range(args.tracks)])
    users = np.array([f"u{i:06d}" for i in range(args.users)])
    popularity = rng.pareto(1.2, args.tracks) + 1
    p = popularity / popularity.sum()
    t0 = datetime(2019, 3, 1)

    def frame(user_idx: np.ndarray, per_user: int, offset_days: int) -> pl.DataFrame:
        u = np.repeat(user_idx, per_user)
        t = rng.choice(args.tracks, size=len(u), p=p)
        df = pl.DataFrame({"user_id": users[u], "track_id": tracks[t]}).unique(["user_id", "track_id"])
        return df.with_columns(
            pl.lit(t0 + timedelta(days=offset_days)).alias("timestamp").cast(pl.Datetime("us")), pl.lit(1).alias("plays")
        )

    train = frame(np.arange(args.users), args.history, 0)
    held = rng.permutation(args.users)[: 2 * args.eval_users]
    asked = frame(held, 22, 360).join(train, on=["user_id", "track_id"], how="anti")
    val_users = set(users[held[: args.eval_users]].tolist())
    asked = asked.filter(pl.col("track_id").is_in(train["track_id"].unique().implode()))
    asked.filter(pl.col("user_id").is_in(val_users)).write_parquet(root / "val.parquet")
    asked.filter(~pl.col("user_id").is_in(val_users)).write_parquet(root / "test.parquet")
    train.write_parquet(root / "train.parquet")
    layers = rng.standard_normal((args.tracks, args.layers, args.dim), dtype=np.float32)
    names = [f"layer{i}" for i in range(args.layers)]
    attrs = {"layer": "last", "layer_names": names, "layer_dims": [args.dim] * args.layers}
    write_embeddings(root / "cache.h5", tracks.tolist(), layers[:, -1], layers=layers, attrs=attrs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=56193)
    parser.add_argument("--users", type=int, default=17053)
    parser.add_argument("--eval-users", type=int, default=6092, help="users in each of val and test")
    parser.add_argument("--history", type=int, default=300, help="train tracks drawn per user")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    set_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        write_inputs(root, args)
        setup = time.perf_counter() - t0
        reads = []
        for i in range(args.layers):
            t1 = time.perf_counter()
            read_layers(root / "cache.h5", i)
            reads.append(time.perf_counter() - t1)
        paths = SweepPaths(
            train=str(root / "train.parquet"), val=str(root / "val.parquet"), test=str(root / "test.parquet"),
            embeddings=str(root / "cache.h5"), metrics=str(root / "m.parquet"), info=str(root / "i.json"),
        )
        t2 = time.perf_counter()
        sweep_layers({"type": "knn"}, "bench", 0, args.k, paths)
        total = time.perf_counter() - t2
        info = json.loads((root / "i.json").read_text())
        n_train = pl.scan_parquet(root / "train.parquet").select(pl.len()).collect().item()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.tracks:,} tracks, {args.users:,} users ({n_train:,} train rows), {args.eval_users:,} val + "
        f"{args.eval_users:,} test users, {args.layers} layers x {args.dim}, K={args.k}, {args.threads} threads; "
        f"inputs written in {setup:.0f} s\n"
    )
    print("| layer | read from cache (s) | evaluate (s) |\n|---|---|---|")
    for layer in info["layers"]:
        read = f"{reads[layer['layer']]:.2f}" if layer["layer"] is not None else "– (running sum)"
        print(f"| {layer['layer_name']} | {read} | {layer['seconds']:.1f} |")
    print(f"\nwhole sweep (split load + every layer + the mean): {total:.0f} s; peak RSS {peak:,.0f} MB")


if __name__ == "__main__":
    main()

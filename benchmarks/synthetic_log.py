"""A fast generator of a large listening log in the Music4All-Onion layout (no audio).

Used by benchmarks/split.py to measure the split at real scale without the real file.
The log mimics what makes the real one costly to split: ~2,000 listens per user spread
over 2005-2020 and denser towards the end, heavy repeat listening (so most pairs of the
test period were heard before), newest-first rows per user, 16-character ids, and one
corrupt 1970 timestamp. It is not a model of taste: the synthetic *dataset* generator
(src/audiorec/data/synthetic) is the one with a ground truth.

    python benchmarks/synthetic_log.py benchmarks/out/log.tsv --rows 50000000 [--bz2]
"""

from __future__ import annotations

import argparse
import bz2
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl

HEADER = b"user_id\ttrack_id\ttimestamp\n"
ALPHABET = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
EPOCH_START = np.datetime64("2005-01-01T00:00:00", "s").astype(np.int64)
EPOCH_END = np.datetime64("2020-03-20T23:59:59", "s").astype(np.int64)


def random_ids(rng: np.random.Generator, n: int, length: int = 16) -> pl.Series:
    """`n` distinct random base-62 ids (Music4All's look), in a seeded order."""
    seen: set[bytes] = set()
    out: list[str] = []
    while len(out) < n:
        raw = ALPHABET[rng.integers(0, len(ALPHABET), size=(n, length))]
        for row in raw:
            b = row.tobytes()
            if b not in seen:
                seen.add(b)
                out.append(b.decode())
                if len(out) == n:
                    break
    return pl.Series(out, dtype=pl.String)


def _block(
    seed: int, first_user: int, n_users_block: int, rows_per_user: float, n_tracks: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """User, track and timestamp indices of one block of users, newest-first per user."""
    rng = np.random.default_rng([seed, first_user])
    counts = np.maximum(1, rng.lognormal(np.log(rows_per_user) - 0.5, 1.0, n_users_block)).astype(np.int64)
    users = np.repeat(np.arange(first_user, first_user + n_users_block), counts)
    n = len(users)
    # A user's library is a user-specific rotation of a Zipf-ranked list, plus global hits.
    base = rng.integers(0, n_tracks, n_users_block)[users - first_user]
    rank = np.minimum(rng.zipf(1.3, n) - 1, n_tracks - 1)
    popular = rng.random(n) < 0.2
    tracks = np.where(popular, rank, (base + rank) % n_tracks)
    # Activity starts anywhere in 2005-2019; listens crowd towards the end of the log.
    start = rng.integers(EPOCH_START, EPOCH_END - 30 * 86400, n_users_block)[users - first_user]
    ts = start + ((EPOCH_END - start) * (rng.random(n) ** 0.5)).astype(np.int64)
    order = np.lexsort((-ts, users))
    return users[order], tracks[order], ts[order]


def write_log(
    path: str | os.PathLike[str],
    rows: int,
    users: int | None = None,
    tracks: int = 56_512,
    seed: int = 0,
    compress: bool = False,
    workers: int = 2,
) -> Path:
    """Write a log of about `rows` listens; `.bz2` (multi-stream, like pbzip2) if `compress`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    users = users or max(10, rows // 2_100)
    rng = np.random.default_rng(seed)
    user_ids = random_ids(rng, users)
    track_ids = random_ids(rng, tracks)
    block_users = max(1, min(users, 1_000_000 // max(1, rows // users)))
    rows_per_user = rows / users
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "wb") as out, ProcessPoolExecutor(workers) as pool:
        out.write(HEADER if not compress else bz2.compress(HEADER, 9))
        pending = []
        for first in range(0, users, block_users):
            u, t, ts = _block(seed, first, min(block_users, users - first), rows_per_user, tracks)
            if first == 0:
                ts[len(ts) // 2] = 0  # the real log's corrupt 1970 row, in the middle of a user
            frame = pl.DataFrame(
                {
                    "user_id": user_ids.gather(u),
                    "track_id": track_ids.gather(t),
                    "timestamp": pl.from_epoch(pl.Series(ts), time_unit="s").dt.strftime("%Y-%m-%d %H:%M:%S"),
                }
            )
            text = frame.write_csv(separator="\t", include_header=False, quote_style="never").encode()
            if compress:
                pending.append(pool.submit(bz2.compress, text, 9))
                while len(pending) > workers:
                    out.write(pending.pop(0).result())
            else:
                out.write(text)
        for fut in pending:
            out.write(fut.result())
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=None, help="default: rows / 2100, as in Music4All-Onion")
    parser.add_argument("--tracks", type=int, default=56_512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bz2", action="store_true", help="compress (multi-stream bz2, parallel)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    path = write_log(args.path, args.rows, args.users, args.tracks, args.seed, args.bz2)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()

"""Synthetic split parts and item vectors for the training benchmarks (no audio).

Listening is generated with the structure the recommenders are meant to find: users have
tastes over item clusters (which content vectors reveal), item popularity is long-tailed,
and listening moves through "albums" in order (sequence structure only BERT4Rec can use).
Each evaluated user's latest distinct items become their val or test items, as the
paper's temporal protocol does for the month after the split date.

`make_split(scale="paper")` gives Music4All-Onion's Table 2 size (17,053 users, 56,193
tracks, ~5.1M train rows); `scale="default"` the size of the default synthetic pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

SCALES = {
    # users, items, listening-length scale, vector dims, share of users evaluated (val + test)
    # paper: Table 2 of the paper (17,053 users; 56,193 tracks; 5.12M train rows; 6,092 + 6,092)
    "default": dict(n_users=1500, n_items=1000, mean_items=40, dim=200, eval_share=0.36),
    "paper": dict(n_users=17053, n_items=56193, mean_items=214, dim=200, eval_share=0.72),
}


@dataclass
class SyntheticSplit:
    train: pl.DataFrame
    val: pl.DataFrame
    test: pl.DataFrame
    track_ids: list[str]
    vectors: np.ndarray  # float32 [n_items, dim], rows in track_ids order


def make_split(
    scale: str = "default",
    seed: int = 0,
    n_clusters: int = 40,
    album_len: int = 12,
    p_continue: float = 0.6,
    held_out_share: float = 0.08,
    content_noise: float = 1.0,
    **overrides: float,
) -> SyntheticSplit:
    params = {**SCALES[scale], **overrides}
    n_users, n_items, mean_items, dim = params["n_users"], params["n_items"], params["mean_items"], params["dim"]
    eval_share = params["eval_share"]
    rng = np.random.default_rng(seed)

    cluster = rng.integers(0, n_clusters, n_items)
    order = np.argsort(cluster, kind="stable")  # items grouped by cluster; albums are runs of it
    position = np.empty(n_items, dtype=np.int64)
    position[order] = np.arange(n_items)
    album = position // album_len
    next_item = np.full(n_items, -1, dtype=np.int64)
    same_album = album[order[:-1]] == album[order[1:]]
    next_item[order[:-1][same_album]] = order[1:][same_album]

    popularity = 1.0 / (rng.permutation(n_items) + 1.0) ** 0.7
    cum_pop = np.cumsum(popularity[order])
    cluster_bounds = np.searchsorted(cluster[order], np.arange(n_clusters + 1))
    lo = np.where(cluster_bounds[:-1] > 0, cum_pop[np.maximum(cluster_bounds[:-1] - 1, 0)], 0.0)
    hi = cum_pop[np.maximum(cluster_bounds[1:] - 1, 0)]

    taste = rng.dirichlet(np.full(n_clusters, 0.15), n_users)
    cum_taste = np.cumsum(taste, axis=1)
    # distinct items per user ~ lognormal around the mean; extra steps allow for repeats
    cap = min(n_items // 2, 10 * mean_items)
    target = np.clip(rng.lognormal(np.log(mean_items) - 0.3, 0.8, n_users), 5, cap).astype(np.int64)
    steps = (target * 1.6).astype(np.int64) + 5

    max_steps = int(steps.max())
    events = np.full((n_users, max_steps), -1, dtype=np.int32)
    current = np.full(n_users, -1, dtype=np.int64)
    for t in range(max_steps):
        active = steps > t
        follow = (current >= 0) & (next_item[np.maximum(current, 0)] >= 0) & (rng.random(n_users) < p_continue)
        c = (cum_taste < rng.random(n_users)[:, None]).sum(axis=1).clip(max=n_clusters - 1)
        u = lo[c] + rng.random(n_users) * (hi[c] - lo[c])
        jump = order[np.clip(np.searchsorted(cum_pop, u), cluster_bounds[c], np.maximum(cluster_bounds[c + 1] - 1, 0))]
        current = np.where(follow, next_item[np.maximum(current, 0)], jump)
        events[active, t] = current[active]

    users = np.repeat(np.arange(n_users), max_steps)
    times = np.tile(np.arange(max_steps), n_users)
    items = events.ravel()
    keep = items >= 0
    frame = pl.DataFrame({"u": users[keep], "i": items[keep], "t": times[keep]})
    frame = frame.group_by("u", "i").agg(pl.col("t").min(), pl.len().alias("plays")).sort("u", "t")
    frame = frame.with_columns(pl.int_range(pl.len()).over("u").alias("pos"), pl.len().over("u").alias("n"))
    evaluated = rng.random(n_users) < eval_share
    to_val = rng.random(n_users) < 0.5
    held = np.maximum(1, (frame.get_column("n").to_numpy() * held_out_share).astype(np.int64))
    is_held = (frame.get_column("pos").to_numpy() >= frame.get_column("n").to_numpy() - held) & evaluated[
        frame.get_column("u").to_numpy()
    ]
    train = frame.filter(~pl.Series(is_held))
    held_frame = frame.filter(pl.Series(is_held)).filter(pl.col("i").is_in(train.get_column("i").unique().implode()))

    user_ids = np.array([f"user{u:06d}" for u in range(n_users)], dtype=object)
    track_ids = [f"track{i:07d}" for i in range(n_items)]
    track_arr = np.array(track_ids, dtype=object)
    base = np.datetime64("2019-02-20T00:00:00")

    def part(df: pl.DataFrame) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "user_id": pl.Series(user_ids[df.get_column("u").to_numpy()].tolist(), dtype=pl.String),
                "track_id": pl.Series(track_arr[df.get_column("i").to_numpy()].tolist(), dtype=pl.String),
                "timestamp": (base + df.get_column("t").to_numpy().astype("timedelta64[m]") * 37).astype("datetime64[us]"),
                "plays": df.get_column("plays").cast(pl.Int64),
            }
        )

    val_users = np.flatnonzero(evaluated & to_val)
    held_val = held_frame.filter(pl.col("u").is_in(val_users.tolist()))
    held_test = held_frame.filter(~pl.col("u").is_in(val_users.tolist()))

    centroids = rng.standard_normal((n_clusters, 16))
    latent = centroids[cluster] + content_noise * rng.standard_normal((n_items, 16))
    mixing = rng.standard_normal((16, dim)) / 4.0
    vectors = (latent @ mixing + 0.3 * rng.standard_normal((n_items, dim))).astype(np.float32)
    return SyntheticSplit(part(train), part(held_val), part(held_test), track_ids, vectors)


def cached_split(scale: str, seed: int = 0, cache_dir: str = "benchmarks/out/data") -> SyntheticSplit:
    """make_split, stored as Parquet + .npy under cache_dir (paper scale takes a minute or two)."""
    from pathlib import Path

    root = Path(cache_dir) / f"{scale}-seed{seed}"
    names = ("train", "val", "test")
    if not all((root / f"{n}.parquet").exists() for n in names) or not (root / "vectors.npy").exists():
        split = make_split(scale, seed)
        root.mkdir(parents=True, exist_ok=True)
        for n in names:
            getattr(split, n).write_parquet(root / f"{n}.parquet")
        np.save(root / "vectors.npy", split.vectors)
        (root / "track_ids.txt").write_text("\n".join(split.track_ids))
        return split
    return SyntheticSplit(
        *(pl.read_parquet(root / f"{n}.parquet") for n in names),
        track_ids=(root / "track_ids.txt").read_text().split("\n"),
        vectors=np.load(root / "vectors.npy"),
    )

"""A fake results tree (split parts, split stats, run recommendations) for report workflow tests.

Upstream stages are stood in for by files written here, so the test exercises only the
evaluate and report rules. Recommendations are planted so that the expected ordering is
known: `shallow/musicnn` hits most, `shallow/random` least.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import polars as pl

# model -> backend -> probability that a recommendation slot holds a relevant track
HIT_RATES = {
    "pop": {"none": 0.05},
    "knn": {"mfcc": 0.10, "musicnn": 0.15},
    "shallow": {"mfcc": 0.25, "musicnn": 0.45, "random": 0.02},
}
SEEDS = (0, 1)
# backend -> tracks its runs ranked without (no vector): shown in runs.csv and table3.md
DROPPED = {"mfcc": 2}
K = 5


def write_fake_tree(root: Path, dataset: str, n_users: int = 40, n_tracks: int = 200, seed: int = 0) -> dict:
    """Write results/{dataset}/split/* and runs/*/recs_*.parquet under root; return what was planted."""
    rng = random.Random(seed)
    tracks = [f"t{i:04d}" for i in range(n_tracks)]
    split_dir = root / "results" / dataset / "split"
    split_dir.mkdir(parents=True, exist_ok=True)
    users = {"val": [f"v{i:03d}" for i in range(n_users)], "test": [f"u{i:03d}" for i in range(n_users)]}
    truth: dict[str, dict[str, list[str]]] = {}
    for part, part_users in users.items():
        truth[part] = {u: rng.sample(tracks, rng.randint(3, 12)) for u in part_users}
        rows = [
            {"user_id": u, "track_id": t, "timestamp": "2020-03-01 00:00:00", "plays": 1}
            for u, ts in truth[part].items()
            for t in ts
        ]
        pl.DataFrame(rows).with_columns(pl.col("timestamp").str.to_datetime()).write_parquet(
            split_dir / f"{part}.parquet"
        )
    train_users = users["val"] + users["test"]
    # Every user played the first track; user i also played the next i % 7 tracks, so
    # popularity and history length vary (the report's user groups).
    train_rows = [(u, tracks[j]) for i, u in enumerate(train_users) for j in range(1 + i % 7)]
    pl.DataFrame(
        {"user_id": [u for u, _ in train_rows], "track_id": [t for _, t in train_rows], "plays": [1] * len(train_rows)}
    ).write_parquet(split_dir / "train.parquet")
    pl.DataFrame({"track_id": tracks, "cold": [False] * n_tracks, "candidate": [True] * n_tracks}).write_parquet(
        split_dir / "catalogue.parquet"
    )
    # The split stage's layout (docs/split.md): the input, each filter's removals, the parts.
    n_val, n_test = sum(map(len, truth["val"].values())), sum(map(len, truth["test"].values()))
    pl.DataFrame(
        {
            "stage": ["input", "removed", "part", "part", "part"],
            "name": ["log", "malformed_columns", "train", "val", "test"],
            "listens": [5 * n_users, 0, 2 * n_users, n_val, n_test],
            "interactions": [None, None, 2 * n_users, n_val, n_test],
            "users": [2 * n_users, None, 2 * n_users, n_users, n_users],
            "items": [n_tracks, None, n_tracks, n_tracks // 2, n_tracks // 2],
        }
    ).write_csv(split_dir / "stats.csv")
    for model, backends in HIT_RATES.items():
        for backend, p in backends.items():
            for s in SEEDS:
                run = root / "results" / dataset / "runs" / model / backend / f"seed{s}"
                run.mkdir(parents=True, exist_ok=True)
                for part in ("val", "test"):
                    rows = []
                    for u, relevant in truth[part].items():
                        others = [t for t in tracks if t not in relevant]
                        pool_rel = list(relevant)
                        rng.shuffle(pool_rel)
                        ranked = []
                        for _ in range(K):
                            ranked.append(pool_rel.pop() if pool_rel and rng.random() < p else others.pop(rng.randrange(len(others))))
                        rows += [
                            {"user_id": u, "track_id": t, "rank": r + 1, "score": float(K - r)}
                            for r, t in enumerate(ranked)
                        ]
                    pl.DataFrame(rows).write_parquet(run / f"recs_{part}.parquet")
                # what the train job records; mfcc's extraction "failed" for two tracks
                dropped = DROPPED.get(backend, 0)
                info = {"n_candidates": n_tracks - dropped, "n_items_without_embedding": dropped,
                        "n_candidates_dropped_no_vector": dropped, "best_epoch": 0, "seconds": 1.0}
                (run / "run.json").write_text(json.dumps(info))
    return {"truth": truth, "users": users}


def fake_config(dataset: str, dataset_path: str, fmt: str = "music4all-onion") -> dict:
    spec = {"format": fmt}
    if fmt != "synthetic":
        spec["path"] = dataset_path
    return {
        "datasets": {dataset: spec},
        "backends": {"mfcc": {}, "musicnn": {}},
        "models": {"pop": {}, "knn": {}, "shallow": {}},
        "evaluation": {"k": K},
        "report": {"n_permutations": 2000},
        "seeds": list(SEEDS),
    }

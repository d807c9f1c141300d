"""runs.csv: what each run's `run.json` says about its inputs, one row per run.

Metrics alone hide how a run was ranked. A backend whose extraction failed for some tracks
ranks without them (docs/models.md, "Tracks without an embedding"): its candidates are fewer
and some targets cannot be hit. A reader comparing two backends must see that, so the report
lists per run the candidates dropped and why, and table3.md says when any run dropped some.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl

#: run.json keys shown per run, in this order (absent keys, e.g. of older runs, stay empty)
COLUMNS = (
    "n_candidates",
    "n_items_without_embedding",
    "n_candidates_dropped_no_vector",
    "n_train_rows_dropped_no_vector",
    "n_users_without_input",
    "n_val_targets_without_vector",
    "n_test_targets_without_vector",
    "best_epoch",
    "epochs_run",
    "seconds",
)


def read_runs(paths: list[str | os.PathLike[str]]) -> pl.DataFrame:
    """model, backend, seed and the COLUMNS of every run.json (runs/{model}/{backend}/seed{n}/run.json)."""
    rows = []
    for path in map(Path, paths):
        try:
            info = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: cannot read the run's run.json ({error}); re-run its `train` job") from None
        seed = path.parent.name.removeprefix("seed")
        rows.append(
            {
                "model": path.parent.parent.parent.name,
                "backend": path.parent.parent.name,
                "seed": int(seed) if seed.isdigit() else None,
                **{key: info.get(key) for key in COLUMNS},
            }
        )
    schema = {"model": pl.String, "backend": pl.String, "seed": pl.Int64, **dict.fromkeys(COLUMNS[:-1], pl.Int64), "seconds": pl.Float64}
    return pl.DataFrame(rows, schema=schema, orient="row")


def dropped_note(runs: pl.DataFrame) -> str | None:
    """One sentence for table3.md when any run ranked without some tracks (None otherwise)."""
    dropped = runs.filter(pl.col("n_candidates_dropped_no_vector").fill_null(0) > 0)
    if dropped.is_empty():
        return None
    per_backend = dropped.group_by("backend").agg(pl.col("n_candidates_dropped_no_vector").max()).sort("backend")
    listed = ", ".join(f"{b} {n}" for b, n in per_backend.iter_rows())
    return (
        f"Tracks without a vector (extraction failures) are never candidates and stay targets: runs on "
        f"these backends ranked without them (tracks dropped: {listed}); per run in runs.csv."
    )

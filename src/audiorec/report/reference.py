"""The paper's published numbers, shipped with the package, and the user's MIR score table.

Tamm & Aljanaki (RecSys 2024): Table 2 (split sizes of Music4All-Onion), Table 3 (test
metrics at K=50) and Table 4 (MIR scores self-reported by each backend's paper). They
are reference columns beside our numbers, matched by model type and backend type, so a
renamed backend instance (`mert-330m: {type: mert}`) still finds its row.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import polars as pl

# Display names of model and backend types, as the paper writes them.
MODEL_NAMES = {
    "pop": "Pop", "knn": "KNN", "shallow": "ShallowNet", "bert4rec": "BERT4Rec", "sasrec": "SASRec",
    "ials": "iALS", "content2cf": "Content2CF", "contrastive": "Contrastive", "cmf": "CMF",  # labels of their declarations (models/*.yaml)
}
BACKEND_NAMES = {
    "random": "Random",
    "none": "—",
    "oracle": "Oracle",
    "mfcc": "MFCC",
    "musicnn": "MusiCNN",
    "mert": "MERT",
    "music2vec": "Music2Vec",
    "musicfm": "MusicFM",
    "encodecmae": "EncodecMAE",
    "jukebox": "Jukebox",
}
PAPER_K = 50


def _shipped(name: str) -> Path:
    return Path(str(resources.files("audiorec.report") / "reference" / name))


def shipped_mir_scores() -> Path:
    """Path of the shipped Table 4 (the default of `report.mir_scores`)."""
    return _shipped("table4_mir.csv")


def paper_table2() -> pl.DataFrame:
    """part (train/val/test), users, items, interactions."""
    return pl.read_csv(_shipped("table2_paper.csv"))


def paper_table3() -> pl.DataFrame:
    """model, embeddings, model_type, backend_type, k, hitrate, recall, ndcg (test split)."""
    return pl.read_csv(_shipped("table3_paper.csv"))


class ReferenceError(ValueError):
    """A user-supplied reference table that cannot be read."""


def read_mir_scores(path: str | os.PathLike[str] | None) -> pl.DataFrame:
    """A Table-4-style CSV: `type` (backend type), optional `name`, then one numeric column per MIR task,
    and optionally `source` (text: where the row's numbers were published; not shown as a task).

    Empty cells mean "not reported". Task columns keep the CSV's order so the report
    shows them as the user wrote them.
    """
    source = Path(path) if path else shipped_mir_scores()
    if not source.exists():
        raise ReferenceError(f"report.mir_scores: no file at {source}; point it at a CSV or remove the key")
    frame = pl.read_csv(source, infer_schema_length=None)
    if "type" not in frame.columns:
        raise ReferenceError(
            f"{source}: needs a `type` column naming the backend type (e.g. mert) of each row; "
            f"it has {frame.columns}"
        )
    if "name" not in frame.columns:
        frame = frame.with_columns(pl.col("type").alias("name"))
    tasks = [c for c in frame.columns if c not in ("type", "name", "source")]
    if not tasks:
        raise ReferenceError(f"{source}: no MIR score columns besides `type` and `name`")
    bad = [c for c in tasks if not frame.schema[c].is_numeric() and frame[c].null_count() < len(frame)]
    if bad:
        raise ReferenceError(f"{source}: MIR score column(s) {bad} are not numeric; leave unreported scores empty")
    return frame.select(
        pl.col("type").cast(pl.String).str.to_lowercase(),
        pl.col("name").cast(pl.String),
        *[pl.col(c).cast(pl.Float64) for c in tasks],
    )

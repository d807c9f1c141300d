"""Intra-list diversity over the dataset's genre labels, a space no audio backend owns.

Labels: Music4All's `id_genres` (`id`, `genres`: comma-separated, several per track) or the
synthetic `id_genres.tsv` (`id`, `genre`: one per track); tab-separated, optionally .bz2.

Distance between two tracks = 1 - Jaccard(G_i, G_j) over their genre sets: 0 for the same
genres, 1 for disjoint ones; with one genre per track, 1 exactly when the genres differ.
Jaccard rather than cosine because Music4All's tags are sets of unequal size, and set
overlap needs no weighting choice. A list's diversity is the mean distance over all
unordered pairs of its *labelled* tracks; n_labelled says how many there were. A list with
fewer than 2 labelled tracks has no pair: its diversity is 0 (no measurable diversity), and
the count of such users is logged, so nothing is NaN.
"""

from __future__ import annotations

import bz2
import io
import os
from pathlib import Path

import numpy as np
import polars as pl

CHUNK_USERS = 256


def read_genre_labels(path: str | os.PathLike[str]) -> pl.DataFrame:
    """(track_id, genres: list[str]) from an id_genres file; tracks with no genre are left out."""
    path = Path(path)
    raw = bz2.open(path).read() if path.suffix == ".bz2" else path.read_bytes()
    frame = pl.read_csv(io.BytesIO(raw), separator="\t", quote_char=None, infer_schema_length=0)
    if "id" not in frame.columns or not ({"genres", "genre"} & set(frame.columns)):
        raise ValueError(
            f"{path}: a genre label file needs columns `id` and `genres` (Music4All, comma-separated) or `genre` "
            f"(synthetic); it has {frame.columns}"
        )
    column = "genres" if "genres" in frame.columns else "genre"
    labels = frame.select(
        pl.col("id").alias("track_id"),
        pl.col(column).fill_null("").str.split(",").list.eval(pl.element().str.strip_chars()).list.eval(
            pl.element().filter(pl.element() != "")
        ).list.unique().alias("genres"),
    )
    return labels.filter(pl.col("genres").list.len() > 0)


def genre_diversity(top: pl.DataFrame, genres: pl.DataFrame) -> pl.DataFrame:
    """(user_id, diversity, n_labelled) for the users of `top` (user_id, track_id, rank)."""
    vocab = genres["genres"].explode().unique().sort()
    gindex = {g: i for i, g in enumerate(vocab.to_list())}
    track_index = genres.select("track_id").with_row_index("t")
    matrix = np.zeros((len(genres) + 1, max(len(vocab), 1)), dtype=np.float32)  # last row: unlabelled
    rows = np.repeat(np.arange(len(genres)), genres["genres"].list.len().to_numpy())
    cols = np.array([gindex[g] for g in genres["genres"].explode().to_list()], dtype=np.int64)
    matrix[rows, cols] = 1.0
    blank = len(genres)
    labelled = (
        top.join(track_index, on="track_id", how="inner")
        .sort("user_id", "rank")
        .group_by("user_id", maintain_order=True)
        .agg(pl.col("t"))
    )
    if labelled.is_empty():
        return pl.DataFrame(schema={"user_id": pl.String, "diversity": pl.Float64, "n_labelled": pl.Int64})
    lengths = labelled["t"].list.len().to_numpy()
    width = int(lengths.max())
    index = np.full((len(labelled), width), blank, dtype=np.int64)
    flat = labelled["t"].explode().to_numpy().astype(np.int64)
    index[np.repeat(np.arange(len(labelled)), lengths), np.concatenate([np.arange(n) for n in lengths])] = flat
    sizes = matrix.sum(axis=1)
    values = np.zeros(len(labelled))
    for lo in range(0, len(labelled), CHUNK_USERS):
        idx = index[lo : lo + CHUNK_USERS]
        x = matrix[idx]  # [u, L, G]
        inter = np.matmul(x, x.transpose(0, 2, 1)).astype(np.float64)  # [u, L, L]; counts, exact in float32
        s = sizes[idx].astype(np.float64)
        union = s[:, :, None] + s[:, None, :] - inter
        real = idx != blank
        pair = real[:, :, None] & real[:, None, :] & np.triu(np.ones((idx.shape[1],) * 2, dtype=bool), 1)
        dist = np.where(pair, 1.0 - inter / np.where(union > 0, union, 1.0), 0.0)
        n_pairs = pair.sum(axis=(1, 2))
        values[lo : lo + CHUNK_USERS] = np.where(n_pairs > 0, dist.sum(axis=(1, 2)) / np.maximum(n_pairs, 1), 0.0)
    return pl.DataFrame(
        {"user_id": labelled["user_id"], "diversity": values, "n_labelled": lengths.astype(np.int64)}
    )

"""`artist_mean`: the artist-aware cold-start baseline (docs/beyond.md, "Artist-aware cold start").

A cold track (no train listen) whose artist has warm tracks (with train listens) gets the
mean of those tracks' vectors; every other track keeps its own. Users and scores are KNN's
(a user is the mean of their train tracks' vectors; tracks ranked by cosine), so the only
difference from KNN with the same backend is what a cold track of a known artist looks like.

Which vectors: the run's backend. With an audio backend the artist mean is a content vector
("what this artist sounds like"); with `random` (seeded random vectors that carry nothing)
it is an artist identity: the score of a seen-artist cold track grows with how many of the
user's train tracks are by that artist, and new-artist cold tracks keep a random vector
(random ranking) — the artist signal alone, the collaborative flavour of the baseline
without training anything. Under the warm protocol no track is cold, and it equals KNN.

The artist of a track comes from the dataset's `id_information` (`id`, `artist`); tracks it
does not list keep their own vector.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import polars as pl

from ..evaluation.artists import read_artists
from .data import SplitData
from .item_vectors import ItemVectors
from .knn import KNN
from .registry import RunContext

log = logging.getLogger(__name__)


def artist_mean_vectors(vectors: ItemVectors, data: SplitData, artists: pl.DataFrame) -> tuple[ItemVectors, dict[str, Any]]:
    """The run's item vectors with each seen-artist cold track's vector replaced (see module doc)."""
    n_items = data.n_items
    warm = np.bincount(data.train.indices, minlength=n_items) > 0
    coded = artists.with_columns((pl.col("artist").rank("dense") - 1).cast(pl.Int64).alias("code"))
    code = (
        pl.DataFrame({"track_id": list(data.track_ids)})
        .join(coded, on="track_id", how="left", maintain_order="left")["code"]
        .fill_null(-1)
        .to_numpy()
    )
    known = code >= 0
    n_artists = int(code.max()) + 1 if known.any() else 0
    source = vectors.vectors.astype(np.float64)
    use = warm & known
    sums = np.zeros((n_artists, source.shape[1]))
    np.add.at(sums, code[use], source[use])
    counts = np.bincount(code[use], minlength=n_artists)
    replace = ~warm & known
    replace[replace] = counts[code[replace]] > 0
    out = vectors.vectors.copy()
    out[replace] = (sums[code[replace]] / counts[code[replace], None]).astype(np.float32)
    info = {
        "n_cold_items": int((~warm).sum()),
        "n_cold_items_seen_artist": int(replace.sum()),
        "n_cold_items_new_artist": int((~warm & known).sum() - replace.sum()),
        "n_items_without_artist": int((~known).sum()),
    }
    log.info("artist_mean: %s", info)
    return ItemVectors(vectors=out, missing=vectors.missing), info


def load_artist_mean_vectors(
    vectors: ItemVectors, data: SplitData, artists_path: str | os.PathLike[str] | None
) -> tuple[ItemVectors, dict[str, Any]]:
    """artist_mean_vectors with the artists read from the dataset's id_information file."""
    if artists_path is None:
        raise ValueError(
            "model type artist_mean needs the dataset's id_information (track id -> artist); put "
            "id_information.tsv[.bz2] in the dataset folder"
        )
    return artist_mean_vectors(vectors, data, read_artists(artists_path))


def build(context: RunContext) -> KNN:
    """The registry's entry point (artist_mean.yaml declares the type): KNN on the artist-mean
    vectors; what was replaced is kept as `run_info` for run.json."""
    if context.vectors is None:
        raise ValueError("artist_mean needs item vectors (a backend, or `random`)")
    vectors, info = load_artist_mean_vectors(context.vectors, context.data, context.inputs.get("artists"))
    model = KNN(context.data, vectors.vectors)
    model.run_info = info
    return model

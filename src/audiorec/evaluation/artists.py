"""Artist-aware cold start (docs/beyond.md): cold-item targets of seen vs new artists.

Most "new" tracks in a real catalogue come from artists already in the training data (Tamm
et al.'s artist-aware cold-start follow-up, ACARec, arXiv 2604.07090), so one cold-start
number mixes two questions. Each val/test target is put in a group:

- `seen_artist`: its artist has at least one track in train.parquet (a warm track);
- `new_artist`: its artist has none;
- `unknown_artist`: the track is not in the dataset's `id_information` (only when such exist).

Each group is evaluated as a split part of its own, with the same per-user metrics as rule
evaluate: relevant = the user's targets of that group, the same top-K list. A user
without a target in a group is not a user of that group.
"""

from __future__ import annotations

import bz2
import io
import logging
import os
from pathlib import Path

import polars as pl

from audiorec.evaluation.metric_names import ARTIST_GROUPS
from audiorec.evaluation.metrics import per_user_metrics

__all__ = ["ARTIST_GROUPS", "per_user_artist_metrics", "read_artists", "target_groups"]

log = logging.getLogger(__name__)


def read_artists(path: str | os.PathLike[str]) -> pl.DataFrame:
    """(track_id, artist) from Music4All's id_information (`id`, `artist`, ...; tab-separated, .bz2 too)."""
    path = Path(path)
    raw = bz2.open(path).read() if path.suffix == ".bz2" else path.read_bytes()
    frame = pl.read_csv(io.BytesIO(raw), separator="\t", quote_char=None, infer_schema_length=0)
    missing = [c for c in ("id", "artist") if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: an id_information file needs columns `id` and `artist`; it lacks {missing}")
    out = frame.select(pl.col("id").alias("track_id"), pl.col("artist").str.strip_chars())
    dup = out.filter(pl.col("track_id").is_duplicated())
    if len(dup):
        raise ValueError(f"{path}: {dup['track_id'].n_unique()} track id(s) listed twice, e.g. {dup['track_id'][0]!r}")
    return out.filter(pl.col("artist").is_not_null() & (pl.col("artist") != ""))


def target_groups(truth: pl.DataFrame, train: pl.DataFrame, artists: pl.DataFrame) -> pl.DataFrame:
    """`truth` (user_id, track_id, ...) with a column artist_group (ARTIST_GROUPS)."""
    warm_artists = (
        train.select(pl.col("track_id").cast(pl.String)).unique().join(artists, on="track_id", how="inner")["artist"].unique()
    )
    return truth.with_columns(pl.col("track_id").cast(pl.String)).join(artists, on="track_id", how="left").with_columns(
        pl.when(pl.col("artist").is_null())
        .then(pl.lit("unknown_artist"))
        .when(pl.col("artist").is_in(warm_artists.implode()))
        .then(pl.lit("seen_artist"))
        .otherwise(pl.lit("new_artist"))
        .alias("artist_group")
    )


def per_user_artist_metrics(
    recs: pl.DataFrame, truth: pl.DataFrame, train: pl.DataFrame, artists: pl.DataFrame, k: int, *, source: str = "recs"
) -> pl.DataFrame:
    """Per-user accuracy metrics per artist group: artist_group, user_id, the metrics, n_relevant, n_recs."""
    grouped = target_groups(truth, train, artists)
    frames = []
    for group in ARTIST_GROUPS:
        part = grouped.filter(pl.col("artist_group") == group).select("user_id", "track_id")
        if part.is_empty():
            continue
        own = recs.filter(pl.col("user_id").cast(pl.String).is_in(part["user_id"].unique().implode()))
        metrics = per_user_metrics(own, part, k, source=f"{source} ({group} targets)")
        frames.append(metrics.select(pl.lit(group).alias("artist_group"), pl.all()))
        log.info("%s: %s: %d targets of %d users", source, group, len(part), len(metrics))
    if not frames:
        raise ValueError(f"{source}: the split part has no targets to group by artist")
    return pl.concat(frames)

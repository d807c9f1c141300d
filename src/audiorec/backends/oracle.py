"""The `oracle` backend: the synthetic generator's latent attributes as track vectors.

It reads `id_genres.tsv` instead of audio, so its vectors hold exactly what the synthetic
listeners' audible taste depends on: the genre and the attributes over which users have
within-genre preferences. A content recommender given these vectors is as well informed
as audio can make it, which makes the oracle the upper-bound reference for the audio
backends (and what a collaborative model gets beyond it is the inaudible part).

The vector (15 numbers by default), in this order:
  * one-hot of the genre over the generator's ten genres (weight 1; a genre absent from
    the dataset is a column of zeros): a track's genre carries most of the taste signal;
  * tempo, density, register, brightness and energy standardised within the track's genre,
    times `numeric_weight` (default 0.5): within-genre standardisation is the scale the
    generator's preferences act on, and the weight keeps the five numeric dimensions from
    drowning the genre in cosine similarity (their squared norm, ~5 x 0.25, is near the
    one-hot's 1).

`columns` (id_genres.tsv columns, default `[genre, tempo, density, register, brightness,
energy]`) selects others: `mode` and `key` become one-hot blocks over their fixed
vocabularies, numeric columns (`swing`, `meter`, ...) are standardised within genre. The
width depends only on the spec, so every job that builds the backend (extraction shards
and their gather) agrees on it without reading the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .base import BackendError, PrecomputedBackend

GENRES_FILE = "id_genres.tsv"
DEFAULT_COLUMNS = ("genre", "tempo", "density", "register", "brightness", "energy")


def _vocabularies() -> dict[str, tuple[str, ...]]:
    from audiorec.data.synthetic.genres import GENRE_NAMES
    from audiorec.data.synthetic.music import MODES, PITCH_NAMES

    return {"genre": tuple(GENRE_NAMES), "mode": tuple(MODES), "key": tuple(PITCH_NAMES)}


class OracleBackend(PrecomputedBackend):
    type_name: ClassVar[str] = "oracle"

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        columns = self.spec.get("columns") or list(DEFAULT_COLUMNS)
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns) or len(set(columns)) != len(columns):
            raise BackendError(
                f"backend type oracle: `columns` must be a list of distinct id_genres.tsv column names, got {columns!r}."
            )
        if "id" in columns:
            raise BackendError("backend type oracle: `columns` must not include `id`.")
        self.columns: list[str] = list(columns)
        weight = self.spec.get("numeric_weight", 0.5)
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not np.isfinite(weight) or weight < 0:
            raise BackendError(f"backend type oracle: `numeric_weight` must be a number >= 0, got {weight!r}.")
        self.numeric_weight = float(weight)
        self.vocabularies = _vocabularies()

    # --- declarations ---

    @property
    def layer_names(self) -> list[str]:
        return ["attributes"]

    @property
    def layer_dims(self) -> list[int]:
        return [sum(len(self.vocabularies[c]) if c in self.vocabularies else 1 for c in self.columns)]

    def feature_names(self) -> list[str]:
        """What each dimension of the vector is (e.g. `genre=rock`, `tempo`)."""
        names: list[str] = []
        for c in self.columns:
            names += [f"{c}={v}" for v in self.vocabularies[c]] if c in self.vocabularies else [c]
        return names

    def attributes(self) -> dict[str, Any]:
        attrs = super().attributes()
        attrs.update({
            "source": GENRES_FILE,
            "features": self.feature_names(),
            "numeric_weight": self.numeric_weight,
            "pooling": "none (the generator's attributes, not audio)",
        })
        return attrs

    # --- computing ---

    def compute(self, dataset_dir: Path, track_ids: Sequence[str]) -> tuple[np.ndarray, dict[str, str]]:
        import polars as pl

        path = Path(dataset_dir) / GENRES_FILE
        if not path.is_file():
            raise BackendError(
                f"backend type oracle needs {path}, which does not exist. The oracle reads the ground truth of a "
                "`format: synthetic` dataset (written by rule synthesize); remove `oracle` from `backends:` for "
                "datasets without it."
            )
        table = pl.read_csv(path, separator="\t", infer_schema_length=None)
        missing = [c for c in ["id", *self.columns] if c not in table.columns]
        if missing:
            raise BackendError(
                f"backend type oracle: {path} has no column(s) {missing} (it has {table.columns}); "
                "set `columns:` of the oracle backend to existing ones."
            )
        if table["id"].is_duplicated().any():
            dupes = table.filter(pl.col("id").is_duplicated())["id"].unique().sort().head(5).to_list()
            raise BackendError(f"backend type oracle: {path} lists track ids more than once, e.g. {dupes}.")
        features = self._features(table, path)
        row_of = {tid: i for i, tid in enumerate(table["id"].cast(pl.Utf8).to_list())}
        vectors = np.zeros((len(track_ids), 1, features.shape[1]), dtype=np.float32)
        failures: dict[str, str] = {}
        for j, tid in enumerate(track_ids):
            i = row_of.get(tid)
            if i is None:
                failures[tid] = f"not listed in {GENRES_FILE}"
            else:
                vectors[j, 0] = features[i]
        return vectors, failures

    def _features(self, table: Any, path: Path) -> np.ndarray:
        import polars as pl

        blocks: list[np.ndarray] = []
        group = table["genre"].cast(pl.Utf8).to_numpy() if "genre" in table.columns else None
        for column in self.columns:
            series = table[column]
            if series.null_count():
                raise BackendError(f"backend type oracle: column {column!r} of {path} has empty values.")
            if column in self.vocabularies:
                vocabulary = self.vocabularies[column]
                values = series.cast(pl.Utf8).to_list()
                unknown = sorted(set(values) - set(vocabulary))
                if unknown:
                    raise BackendError(
                        f"backend type oracle: column {column!r} of {path} has values {unknown[:5]} outside "
                        f"{list(vocabulary)}; is this a synthetic dataset's id_genres.tsv?"
                    )
                index = {v: k for k, v in enumerate(vocabulary)}
                onehot = np.zeros((len(values), len(vocabulary)))
                onehot[np.arange(len(values)), [index[v] for v in values]] = 1.0
                blocks.append(onehot)
            elif series.dtype.is_numeric():
                blocks.append(self.numeric_weight * _standardise(series.to_numpy().astype(np.float64), group)[:, None])
            else:
                raise BackendError(
                    f"backend type oracle: column {column!r} of {path} is not numeric; one-hot columns are "
                    f"{sorted(self.vocabularies)}."
                )
        return np.hstack(blocks).astype(np.float32)


def _standardise(x: np.ndarray, group: np.ndarray | None) -> np.ndarray:
    """z-scores, within each group where groups are given (a constant group gives zeros)."""
    out = np.zeros_like(x)
    keys = np.zeros(len(x), dtype=np.int64) if group is None else np.unique(group, return_inverse=True)[1]
    for k in np.unique(keys):
        rows = keys == k
        mean, sd = x[rows].mean(), x[rows].std()
        # a constant column's sd is rounding noise, not spread: its z-scores are zeros
        out[rows] = (x[rows] - mean) / sd if sd > 1e-9 * max(1.0, abs(mean)) else 0.0
    return out

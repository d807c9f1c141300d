"""Item vectors for the catalogue: pretrained embeddings aligned to item indices, or random.

A track of the split without a row in the embedding cache (its audio failed to decode or
embed; extraction lists it in `{backend}.failures.csv`) has **no vector**: its row is zero
and flagged in `missing`, and the run ranks without it (`SplitData.for_vectors`: it leaves
the model's inputs and the candidates, and stays a val/test target). An invented vector
would be ranked as if it were content: the mean vector, the old fallback, has a
near-maximal cosine with every user's mean and was recommended to nearly everyone. The
count is logged, written to `run.json` and `history.csv`, and bounded by the model's
`max_missing_share`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ItemVectors:
    vectors: np.ndarray  # float32 [n_items, D], or [n_items, L, D] for `layers: weighted`
    missing: np.ndarray  # bool [n_items]: True where the track has no vector (its row is zero)
    layer_names: tuple[str, ...] = ()  # the L cached layers of a [n_items, L, D] stack

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[-1])

    @property
    def n_missing(self) -> int:
        return int(self.missing.sum())


def align_embeddings(
    track_ids: Sequence[str],
    store_ids: Sequence[str],
    store_vectors: np.ndarray,
    max_missing_share: float = 1.0,
    source: str = "the embedding file",
) -> ItemVectors:
    """Rows of `store_vectors` in `track_ids` order; missing tracks get a zero row, flagged."""
    store_vectors = np.asarray(store_vectors, dtype=np.float32)
    if store_vectors.ndim != 2 or store_vectors.shape[0] != len(store_ids):
        raise ValueError(f"{source}: embeddings must be [N={len(store_ids)}, D], got {store_vectors.shape}")
    position = {tid: i for i, tid in enumerate(store_ids)}
    if len(position) != len(store_ids):
        raise ValueError(f"{source} lists some track ids twice; re-run the `embed` rule for this backend")
    rows = np.array([position.get(t, -1) for t in track_ids], dtype=np.int64)
    missing = rows < 0
    n_missing = int(missing.sum())
    if n_missing == len(track_ids):
        raise ValueError(
            f"{source} has no vector for any of the {len(track_ids)} tracks of the split "
            f"(e.g. {list(track_ids[:3])}); it was probably extracted for another dataset. Re-run `embed`."
        )
    share = n_missing / max(1, len(track_ids))
    if share > max_missing_share:
        raise ValueError(
            f"{source} lacks vectors for {n_missing} of {len(track_ids)} tracks ({share:.1%}), more than "
            f"max_missing_share={max_missing_share:.1%} of this model. Fix the extraction failures "
            f"(see the backend's failures.csv) or raise models.<model>.max_missing_share."
        )
    present = store_vectors[rows[~missing]]
    if not np.isfinite(present).all():
        raise ValueError(f"{source} has non-finite embedding values; re-run the `embed` rule for this backend")
    vectors = np.zeros((len(track_ids), store_vectors.shape[1]), dtype=np.float32)
    vectors[~missing] = present
    if n_missing:
        examples = [track_ids[i] for i in np.flatnonzero(missing)[:5]]
        log.warning(
            "%d of %d tracks have no vector in %s (e.g. %s): they are left out of the model's input and "
            "never recommended; as val/test targets they count as misses",
            n_missing, len(track_ids), source, examples,
        )
    return ItemVectors(vectors=vectors, missing=missing)


def load_item_vectors(
    path: str | os.PathLike[str], track_ids: Sequence[str], max_missing_share: float = 1.0
) -> ItemVectors:
    from ..extraction.store import read_embeddings

    store_ids, store_vectors = read_embeddings(path)
    return align_embeddings(track_ids, store_ids, store_vectors, max_missing_share, source=str(path))


def load_layer_stack(
    path: str | os.PathLike[str], track_ids: Sequence[str], backend: str, max_missing_share: float = 1.0
) -> ItemVectors:
    """Every cached layer of a backend's file (`/layers`) aligned to the catalogue: [n_items, L, D]
    for `layers: weighted`. The layers must be several and of one width (a weighted sum of
    vectors of different widths is not defined; zero-padding would mix padding in)."""
    from ..extraction.store import read_layer_info, read_layers

    info = read_layer_info(path)
    if len(info.names) < 2:
        raise ValueError(
            f"backend {backend!r}: layers: weighted mixes the cached layers of {path}, but it caches only one "
            f"({info.names[0]}). Use it with a layered backend (docs/backends.md: `cached layers`), or leave "
            f"{backend!r} out of this model's `backends` / drop `layers: weighted`."
        )
    if len(set(info.dims)) > 1:
        widths = ", ".join(f"{n}: {d}" for n, d in zip(info.names, info.dims))
        raise ValueError(
            f"backend {backend!r}: layers: weighted needs cached layers of one width, but {path} has {widths}. "
            f"Leave {backend!r} out of this model's `backends`, or drop `layers: weighted` and pick one layer "
            f"with the backend's `layer:` (the layer sweep compares them)."
        )
    store_ids, stack = read_layers(path)
    n, n_layers, dim = stack.shape[0], len(info.names), info.dims[0]
    flat = np.ascontiguousarray(stack[:, :n_layers, :dim]).reshape(n, n_layers * dim)
    aligned = align_embeddings(track_ids, store_ids, flat, max_missing_share, source=f"{path} [/layers]")
    return ItemVectors(
        vectors=aligned.vectors.reshape(len(track_ids), n_layers, dim), missing=aligned.missing, layer_names=tuple(info.names)
    )


def random_item_vectors(n_items: int, dim: int, seed: int, std: float = 1.0) -> ItemVectors:
    """Seeded Gaussian vectors: the `random` backend's starting point (learned by the neural models)."""
    rng = np.random.default_rng([seed, 0x5EED])
    vectors = (rng.standard_normal((n_items, dim)) * std).astype(np.float32)
    return ItemVectors(vectors=vectors, missing=np.zeros(n_items, dtype=bool))

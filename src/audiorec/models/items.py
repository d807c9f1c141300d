"""How a model's items enter it: the `items:` setting, one code path for every neural model.

Modes (docs/models.md, "Ways of using content"):
- `content` (the paper): the backend's vectors, frozen, through the model's learned
  projection (the Shallow Net's tower, BERT4Rec's and SASRec's Linear);
- `finetune`: the same, but the vectors are trained too, at `finetune_lr_factor` x the
  model's learning rate (a lower rate keeps them near the content they start from);
- `id`: a learned table per track, no content (the collaborative baseline; the `random`
  backend directory always runs in this mode, so existing run folders keep their meaning);
- `hybrid`: a learned ID table *added* to the projected content. The ID part starts at zero,
  so a hybrid model starts as the content model and its ID table learns only what content
  misses; a track never played in train keeps a zero ID part and is scored by content alone.
- `matched_random` (issue 13 part 5): frozen Gaussian vectors with the backend's width and its
  per-dimension mean and spread, through the same projection: the random baseline that differs
  from `content` in nothing but the content, so "beats random" no longer mixes content with
  capacity.

`normalize` (`none`, the paper; `standard`: per-dimension z-scores over the catalogue's tracks;
`l2`: unit rows) is applied to a backend's vectors before anything else (MFCC statistics span
several orders of magnitude; a frozen input cannot adapt its scale).

`layers` (issue 17): `configured` reads the backend's `/embeddings` (its `layer:`); `weighted`
reads every cached layer (`/layers`, one width) and mixes them by softmax weights learned with
the model (`layer_mix.LayerMix`): MARBLE's learned layer weighting. It lives here, beside
`items`/`normalize`, rather than in the backend, because it is a way of *using* a cache, not of
making one: the backend's `/embeddings` (KNN, the probes, other models) stays as it is, and
only the models that can learn the weights read the whole stack. The layers stay a frozen
buffer (left out of model.pt, like a frozen table); the learned mixture goes to run.json.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .data import SplitData
from .item_vectors import (
    ItemVectors,
    load_item_vectors,
    load_layer_stack,
    random_item_vectors,
)
from .layer_mix import LayerMix

ITEM_MODES = ("content", "finetune", "id", "hybrid", "matched_random")
NORMALIZATIONS = ("none", "standard", "l2")
LAYER_CHOICES = ("configured", "weighted")
# items modes a learned layer mixture combines with: the layers stay frozen (not `finetune`),
# and matched noise per layer would mix noise (not `matched_random`)
WEIGHTED_ITEM_MODES = ("content", "hybrid")
# Backend directory of the learned-table runs: `items: id` (kept as an alias, so the run
# folders of earlier versions keep their meaning and their results).
ID_BACKEND = "random"


@dataclass(frozen=True)
class ItemSettings:
    """A model's `items:` settings (schemas/config.schema.yaml `$defs/model_content`)."""

    mode: str = "content"
    normalize: str = "none"
    finetune_lr_factor: float = 0.1
    random_dim: int = 64
    layers: str = "configured"

    def __post_init__(self) -> None:
        if self.mode not in ITEM_MODES:
            raise ValueError(f"models.<model>.items must be one of {ITEM_MODES}, got {self.mode!r}")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"models.<model>.normalize must be one of {NORMALIZATIONS}, got {self.normalize!r}")
        if self.layers not in LAYER_CHOICES:
            raise ValueError(f"models.<model>.layers must be one of {LAYER_CHOICES}, got {self.layers!r}")
        if self.weighted and self.mode not in WEIGHTED_ITEM_MODES:
            raise ValueError(
                f"models.<model>.layers: weighted keeps the cached layers frozen and learns only their "
                f"mixture; it works with items: content or hybrid, not {self.mode!r}"
            )

    @property
    def weighted(self) -> bool:
        """The items are a learned mixture of every cached layer (`layers: weighted`)."""
        return self.layers == "weighted" and self.mode != "id"

    @classmethod
    def from_config(cls, spec: dict[str, Any], backend: str) -> ItemSettings:
        """The settings of one run. The `random` backend is `items: id` whatever the model's
        `items` says; `freeze_items: false` (the older spelling) is `finetune` at the full rate."""
        mode = spec.get("items", "content")
        factor = float(spec.get("finetune_lr_factor", 0.1))
        if backend == ID_BACKEND:
            mode = "id"
        elif mode == "id":
            raise ValueError(
                f"items: id learns a table of its own and reads no embeddings; it runs as backend "
                f"'{ID_BACKEND}', not {backend!r}"
            )
        elif mode == "content" and spec.get("freeze_items") is False:
            mode, factor = "finetune", 1.0
        # the `random` backend is a learned table: there are no layers to mix
        layers = "configured" if backend == ID_BACKEND else spec.get("layers", "configured")
        return cls(mode, spec.get("normalize", "none"), factor, int(spec.get("random_dim", 64)), layers)


def normalize_vectors(vectors: np.ndarray, how: str, present: np.ndarray | None = None) -> np.ndarray:
    """`standard`: z-scores per dimension (statistics over the `present` rows; a constant
    dimension becomes 0); `l2`: unit rows (a zero row stays zero); `none`: unchanged."""
    if how == "none":
        return vectors
    x = vectors.astype(np.float64)
    if how == "standard":
        rows = x if present is None else x[present]
        std = rows.std(axis=0)
        x = (x - rows.mean(axis=0)) / np.where(std > 0, std, 1.0)
    elif how == "l2":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norms > 0, norms, 1.0)
    else:
        raise ValueError(f"unknown normalisation {how!r}; choose one of {NORMALIZATIONS}")
    return x.astype(np.float32)


def matched_random_vectors(vectors: np.ndarray, seed: int, present: np.ndarray | None = None) -> np.ndarray:
    """Seeded Gaussian vectors with the width, per-dimension mean and standard deviation of
    `vectors` (over the `present` rows): content replaced by noise of the same shape and scale."""
    rows = vectors if present is None else vectors[present]
    mean, std = rows.mean(axis=0, dtype=np.float64), rows.std(axis=0, dtype=np.float64)
    rng = np.random.default_rng([seed, 0x3A7C4ED])
    return (mean + rng.standard_normal(vectors.shape) * std).astype(np.float32)


def item_vectors_for(
    spec: dict[str, Any], backend: str, data: SplitData, seed: int, embeddings: str | None
) -> ItemVectors:
    """The vectors a run's items start from: seeded random vectors of width `random_dim` for
    the `random` backend (fixed for KNN, the ID table's start for the Shallow Net), else the
    backend's embeddings aligned to the catalogue, normalised, and for `matched_random`
    replaced by noise of their shape."""
    settings = ItemSettings.from_config(spec, backend)
    if backend == ID_BACKEND:
        return random_item_vectors(data.n_items, settings.random_dim, seed)
    if embeddings is None:
        raise ValueError(f"model type {spec['type']} with backend {backend!r} needs an embeddings file")
    if settings.weighted:
        stack = load_layer_stack(embeddings, data.track_ids, backend, float(spec.get("max_missing_share", 1.0)))
        present = ~stack.missing
        layers = [normalize_vectors(stack.vectors[:, i], settings.normalize, present) for i in range(stack.vectors.shape[1])]
        return ItemVectors(vectors=np.stack(layers, axis=1), missing=stack.missing, layer_names=stack.layer_names)
    loaded = load_item_vectors(embeddings, data.track_ids, float(spec.get("max_missing_share", 1.0)))
    vectors = prepare_content(loaded.vectors, settings, seed, ~loaded.missing)
    if vectors is loaded.vectors:
        return loaded
    return ItemVectors(vectors=vectors, missing=loaded.missing)


def prepare_content(vectors: np.ndarray, settings: ItemSettings, seed: int, present: np.ndarray | None = None) -> np.ndarray:
    """A backend's aligned vectors as the model receives them: normalised, and replaced by
    matched noise for `matched_random` (the layer sweep calls this for every layer)."""
    vectors = normalize_vectors(vectors, settings.normalize, present)
    if settings.mode == "matched_random":
        vectors = matched_random_vectors(vectors, seed, present)
    return vectors


class ItemInput(nn.Module):
    """The [n_items, width] item matrix of a model, in one `items:` mode.

    `table` holds the (content or matched-random) vectors, frozen unless `finetune`; with
    `layers: weighted` `mix` holds every cached layer instead ([n_items, layers, dim], a frozen
    buffer) and the learned weights that mix them (`table` is then None);
    `projection` maps them to `width` (None when the model projects them itself, as the
    Shallow Net's tower does); `id_table` is the learned ID part (`id`, `hybrid`).
    `id_init` seeds the `id` table (the Shallow Net starts from given random vectors);
    without it the table is N(0, init_std^2), as BERT4Rec's.
    """

    def __init__(
        self,
        settings: ItemSettings,
        n_items: int,
        width: int,
        content: np.ndarray | None = None,
        project: bool = True,
        id_init: np.ndarray | None = None,
        init_std: float = 0.02,
    ) -> None:
        super().__init__()
        self.mode = settings.mode
        self.finetune_lr_factor = settings.finetune_lr_factor
        self.table: nn.Parameter | None = None
        self.mix: LayerMix | None = None
        self.projection: nn.Linear | None = None
        self.id_table: nn.Parameter | None = None
        if self.mode != "id":
            if content is None:
                raise ValueError(f"items: {self.mode} needs the backend's vectors")
            array = np.asarray(content, dtype=np.float32)
            if array.ndim != (3 if settings.weighted else 2):
                want = "[items, layers, dim] (layers: weighted)" if settings.weighted else "[items, dim]"
                raise ValueError(f"items: the vectors must be {want}, got shape {array.shape}")
            if settings.weighted:
                self.mix = LayerMix(array)
            else:
                self.table = nn.Parameter(torch.from_numpy(array.copy()), requires_grad=self.mode == "finetune")
            dim = array.shape[-1]
            if project:
                self.projection = nn.Linear(dim, width)
            elif dim != width:
                raise ValueError(f"items: vectors are {dim} wide, the model needs {width}")
        if self.mode == "id":
            init = torch.from_numpy(np.array(id_init, dtype=np.float32)) if id_init is not None else torch.randn(n_items, width) * init_std
            self.id_table = nn.Parameter(init)
        elif self.mode == "hybrid":
            self.id_table = nn.Parameter(torch.zeros(n_items, width))

    def content(self, index: torch.Tensor | None = None) -> torch.Tensor | None:
        """[n_items, dim] content vectors before the projection (of the items `index` only, when
        given): the table, or the layer mixture."""
        if self.mix is not None:
            return self.mix(index)
        return self.table if self.table is None or index is None else self.table[index]

    def forward(self, index: torch.Tensor | None = None) -> torch.Tensor:
        """The item matrix, or its rows `index` (a batch's items: a layer mixture then mixes
        only those, not the whole catalogue)."""
        vectors = self.content(index)
        if vectors is None:
            assert self.id_table is not None
            return self.id_table if index is None else self.id_table[index]
        content = vectors if self.projection is None else self.projection(vectors)
        if self.id_table is None:
            return content
        return content + (self.id_table if index is None else self.id_table[index])

    def frozen_names(self, prefix: str) -> tuple[str, ...]:
        """State-dict keys of the frozen vectors (left out of model.pt: the embeddings file has them)."""
        if self.mix is not None:
            return (f"{prefix}mix.layers",)
        return (f"{prefix}table",) if self.table is not None and not self.table.requires_grad else ()

    def layer_weights(self, names: tuple[str, ...] | list[str]) -> dict[str, float] | None:
        """{layer name: learned weight} with `layers: weighted` (run.json), else None."""
        if self.mix is None:
            return None
        if len(names) != self.mix.layers.shape[1]:
            raise ValueError(f"{len(names)} layer names for {self.mix.layers.shape[1]} mixed layers")
        return self.mix.report(list(names))

    def lr_scales(self, prefix: str) -> dict[str, float]:
        """Parameter name -> learning-rate factor where it differs from the model's."""
        if self.table is not None and self.table.requires_grad and self.finetune_lr_factor != 1.0:
            return {f"{prefix}table": self.finetune_lr_factor}
        return {}

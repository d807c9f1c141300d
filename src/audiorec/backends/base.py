"""The contract every embedding backend fulfils, so that decoding, resampling, windowing,
batching, device placement, sharding and HDF5 writing live once, in the extraction engine.

A backend *type* (one subclass, registered by name) is instantiated from a config spec
(`backends.{instance}` in config.yaml). It declares what audio it wants (sample rate,
longest window, shortest clip), loads its weights, and turns a padded batch of mono
waveforms into the time-mean of each of its hidden layers. Which layer becomes the
track vector (`/embeddings`) is a cheap selection over the cached layers (`select`), so
choosing another layer never re-runs the audio model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np


class BackendError(RuntimeError):
    """A backend cannot be built or run; the message names the setting or file and the fix."""


class MissingWeightsError(BackendError):
    """Weights are neither cached nor downloadable; the message says where to put them."""


@dataclass(frozen=True)
class LayerMeans:
    """Output of one forward pass over a padded batch.

    means:  [B, L, D] float32, the mean over the *valid* (unpadded) frames of each of the
            L cached hidden states (for transformers: the embedding output + every layer).
            Layers narrower than D are zero-padded on the right; `Backend.layer_dims` says
            how wide each really is.
    frames: [B] number of valid frames each mean covers; the engine uses it to pool the
            windows of one long track into one mean, weighted like a single pass would be.
    """

    means: Any  # torch.Tensor, kept untyped so this module imports without torch
    frames: Any


class Backend(ABC):
    """One backend type. Subclasses set the class attributes and implement `load`/`embed_batch`."""

    #: registry key, the `type:` in config.yaml
    type_name: ClassVar[str]
    #: False for backends computed from dataset metadata rather than audio (see
    #: PrecomputedBackend). An instance may override it (MFCC with `source: dataset`); the
    #: engine then calls its `compute(dataset_dir, track_ids)` like PrecomputedBackend's.
    needs_audio: bool = True
    #: the folder `prefetch` filled (resources/weights/{type}); the engine sets it before
    #: `load`, which should read weights from there. None outside the workflow: the backend
    #: then uses its own default cache.
    weights_dir: Path | None = None

    def __init__(self, spec: Mapping[str, Any]) -> None:
        # Cheap: no weights are read here (the gather step builds backends only to select a
        # layer and read their declarations).
        self.spec: dict[str, Any] = dict(spec)

    # --- what the backend declares ---

    @property
    @abstractmethod
    def sample_rate(self) -> int:
        """The rate the model was trained at; the engine resamples to it."""

    @property
    def window_seconds(self) -> float | None:
        """Longest audio one forward pass takes; the engine cuts longer tracks. None: no limit."""
        return None

    @property
    def min_seconds(self) -> float:
        """Shortest clip the model can embed; the engine zero-pads shorter clips up to it
        and still reports the true length in `lengths`."""
        return 0.0

    @property
    @abstractmethod
    def layer_names(self) -> list[str]:
        """Names of the cached layers, in `/layers` order."""

    @property
    @abstractmethod
    def layer_dims(self) -> list[int]:
        """Width of each cached layer (all equal for transformers)."""

    @property
    def embedding_dim(self) -> int:
        """Width of the selected track vector in `/embeddings`."""
        if self.spec.get("layer") == "mean":  # select() checks that the widths agree
            return max(self.layer_dims)
        return self.layer_dims[self.selected_layer_index()]

    # --- weights ---

    #: False for backends without downloadable weights (no `fetch_weights` job is planned for them)
    has_weights: ClassVar[bool] = True

    def prefetch(self, cache_dir: Path) -> dict[str, Any]:
        """Download the weights into `cache_dir` without building the model, and return a
        manifest (ids, revisions, files). Runs as a local job before extraction, so that
        cluster nodes without internet find everything cached."""
        return {}

    # --- running ---

    @abstractmethod
    def load(self, device: Any, precision: str = "fp32") -> None:
        """Load weights onto `device` (a torch.device); `precision` is fp32, bf16 or fp16."""

    @abstractmethod
    def embed_batch(self, waves: Any, lengths: Any) -> LayerMeans:
        """Embed a zero-padded batch: waves [B, T] float32 at `sample_rate`, lengths [B] samples."""

    # --- choosing the track vector ---

    def selected_layer_index(self) -> int:
        """Index into `layer_names` of the layer `spec['layer']` names (default the last)."""
        layer = self.spec.get("layer", "last")
        names = self.layer_names
        if layer == "last":
            return len(names) - 1
        if isinstance(layer, int) and not isinstance(layer, bool):
            if -len(names) <= layer < len(names):
                return layer % len(names)
            raise BackendError(
                f"backend type {self.type_name}: layer {layer} is out of range; it has "
                f"{len(names)} cached layers (0..{len(names) - 1}, or 'last'/'mean')."
            )
        if layer in names:
            return names.index(layer)
        raise BackendError(
            f"backend type {self.type_name}: unknown layer {layer!r}; choose one of "
            f"{names}, an index, 'last' or 'mean'."
        )

    def select(self, layers: np.ndarray) -> np.ndarray:
        """The track vectors [N, D] from the cached per-layer means [N, L, Dmax]."""
        layers = np.asarray(layers, dtype=np.float32)
        if self.spec.get("layer") == "mean":
            dims = set(self.layer_dims)
            if len(dims) != 1:
                raise BackendError(
                    f"backend type {self.type_name}: layer 'mean' needs layers of one width, "
                    f"these have {self.layer_dims}."
                )
            return layers.mean(axis=1)
        i = self.selected_layer_index()
        return layers[:, i, : self.layer_dims[i]]

    def attributes(self) -> dict[str, Any]:
        """Provenance written as HDF5 attributes (weights id/revision, rate, layer, pooling)."""
        return {
            "backend_type": self.type_name,
            "sample_rate": self.sample_rate,
            "layer": str(self.spec.get("layer", "last")),
            "layer_names": list(self.layer_names),
            "layer_dims": list(self.layer_dims),
            "pooling": "mean over valid frames",
        }


class TransformerStack(Backend):
    """A backend whose cached layers are a transformer's hidden states: entry 0 is the input
    of the first layer (named `first_layer`), then one entry per layer, all of one width.
    Subclasses say how many layers and how wide (`layer_sizes`), from the weights' config
    where it is at hand, so that a checkpoint of another size declares the right layers."""

    #: name of entry 0 (the embedding/front-end output) and prefix of the layer entries
    first_layer: ClassVar[str] = "embedding"
    layer_prefix: ClassVar[str] = "layer"

    @abstractmethod
    def layer_sizes(self) -> tuple[int, int]:
        """(transformer layers L, hidden width D): L+1 cached entries of width D."""

    @property
    def layer_names(self) -> list[str]:
        n, _ = self.layer_sizes()
        return [self.first_layer] + [f"{self.layer_prefix}{i}" for i in range(1, n + 1)]

    @property
    def layer_dims(self) -> list[int]:
        n, d = self.layer_sizes()
        return [d] * (n + 1)


class PrecomputedBackend(Backend):
    """A backend whose vectors come from files of the dataset, not from audio
    (the synthetic `oracle`, MFCC read from `id_mfcc_stats`)."""

    needs_audio: bool = False
    has_weights: ClassVar[bool] = False

    @property
    def sample_rate(self) -> int:
        return 0

    def load(self, device: Any, precision: str = "fp32") -> None:
        return None

    def embed_batch(self, waves: Any, lengths: Any) -> LayerMeans:
        raise BackendError(f"backend type {self.type_name} does not embed audio")

    @abstractmethod
    def compute(self, dataset_dir: Path, track_ids: Sequence[str]) -> tuple[np.ndarray, dict[str, str]]:
        """Vectors [N, L, D] for `track_ids` in order, and {track_id: reason} for those it has none for
        (their rows are ignored)."""

"""MuQ backend: OpenMuQ/MuQ-large-msd-iter (config.json + model.safetensors), 24 kHz, 25 Hz
frames, 13 cached hidden states of 1024 dims (conv subsampling output + 12 conformer layers),
each the mean over the clip's valid frames. The network is rebuilt offline (muq_net.py,
no trust_remote_code, no `muq` package at run time)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .base import BackendError, LayerMeans, MissingWeightsError, TransformerStack
from .hf_common import (
    ResolvedWeights,
    check_precision,
    embed_with_hidden_states,
    load_resolved,
    load_state_dict,
    load_strict,
    read_json,
    resolve_hub_or_local,
    spec_bool,
)
from .muq_net import TRAINING_ONLY, MuQNet, muq_architecture
from .wav2vec_family import rename_checkpoint_keys

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = "OpenMuQ/MuQ-large-msd-iter"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
SAMPLE_RATE = 24000
#: the STFT's reflect padding needs more than n_fft/2 samples; 2048 (85 ms) gives two frames
MIN_SAMPLES = 2048


def muq_state(raw: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(inference weights with MuQNet's names, the training-only keys left out) of a MuQ
    checkpoint: the `model.` wrapper prefix dropped, old weight-norm names renamed."""
    state = rename_checkpoint_keys(dict(raw), ("model.",))
    unused = [k for k in state if k.startswith(TRAINING_ONLY)]
    return {k: v for k, v in state.items() if k not in set(unused)}, unused


class MuQBackend(TransformerStack):
    type_name = "muq"
    first_layer = "conv_subsampling"
    layer_prefix = "conformer"
    default_weights = DEFAULT_WEIGHTS
    #: (layers, width) of the published checkpoints, declared before their config is here
    known: dict[str, tuple[int, int]] = {"OpenMuQ/MuQ-large-msd-iter": (12, 1024)}
    weights_dir: Path | None = None

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__(spec)
        self.weights = str(self.spec.get("weights") or self.default_weights)
        self.revision: str | None = self.spec.get("revision")
        self.local_files_only = spec_bool(self.spec, "local_files_only", False)
        self._resolved: ResolvedWeights | None = None
        self._config: dict[str, Any] | None = None
        self.model: MuQNet | None = None
        self.device = torch.device("cpu")
        self.precision = "fp32"

    def _resolve(self, *, with_weights: bool, local_files_only: bool | None = None, cache_dir: Any = None) -> ResolvedWeights:
        required: list[Any] = ["config.json"]
        if with_weights:
            required.append(list(WEIGHT_FILES))
        return resolve_hub_or_local(
            self.type_name,
            self.weights,
            required,
            revision=self.revision,
            local_files_only=self.local_files_only if local_files_only is None else local_files_only,
            cache_dir=cache_dir if cache_dir is not None else self.weights_dir,
        )

    def _meta(self) -> dict[str, Any] | None:
        if self._config is None:
            try:
                resolved = self._resolve(with_weights=False, local_files_only=True)
            except MissingWeightsError:
                return None
            self._config = read_json(resolved.files["config.json"], backend=self.type_name)
        return self._config

    # --- the contract ---

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def window_seconds(self) -> float | None:
        return 30.0

    @property
    def min_seconds(self) -> float:
        return MIN_SAMPLES / SAMPLE_RATE

    def layer_sizes(self) -> tuple[int, int]:
        if self.model is not None:
            return self.model.num_layers, self.model.config.hidden_size
        config = self._meta()
        if config is not None:
            return int(config.get("encoder_depth", 12)), int(config.get("encoder_dim", 1024))
        if self.weights in self.known:
            return self.known[self.weights]
        raise MissingWeightsError(
            f"backend {self.type_name}: cannot find config.json of '{self.weights}' to know its layers; "
            "run the fetch_weights job first or set `weights:` to a folder holding the model."
        )

    def prefetch(self, cache_dir: Path) -> dict[str, Any]:
        return self._resolve(with_weights=True, local_files_only=False, cache_dir=cache_dir).manifest()

    def build(self, resolved: ResolvedWeights) -> MuQNet:
        """The network with the checkpoint's weights (strict: every inference key, nothing at init)."""
        config = read_json(resolved.files["config.json"], backend=self.type_name)
        self._config = config
        weights_file = resolved.files[WEIGHT_FILES[0]]
        state, unused = muq_state(load_state_dict(weights_file, backend=self.type_name))
        try:
            arch = muq_architecture(config, state)
        except (KeyError, ValueError) as err:
            raise BackendError(f"backend {self.type_name}: {weights_file} is not a MuQ checkpoint this backend runs: {err}") from None
        model = MuQNet(**arch)
        load_strict(model, {**state, **model.computed_state()}, backend=self.type_name, source=str(weights_file))
        log.info("%s: %d training-only checkpoint tensors not loaded (%s)", self.type_name, len(unused), ", ".join(TRAINING_ONLY))
        return model

    def load(self, device: Any, precision: str = "fp32") -> None:
        check_precision(precision, self.type_name)
        resolved = load_resolved(lambda offline: self._resolve(with_weights=True, local_files_only=offline), self.weights_dir)
        model = self.build(resolved)
        self._resolved = resolved
        self.device, self.precision = torch.device(device), precision
        self.model = model.to(self.device).eval()
        log.info("%s: loaded %s (revision %s)", self.type_name, self.weights, resolved.revision)

    def embed_batch(self, waves: Any, lengths: Any) -> LayerMeans:
        if self.model is None:
            raise BackendError(f"backend {self.type_name}: embed_batch before load()")
        return embed_with_hidden_states(self.model, waves, lengths, self.device, self.precision, MIN_SAMPLES)

    def attributes(self) -> dict[str, Any]:
        attrs = super().attributes()
        attrs.update(
            {
                "weights": self.weights,
                "revision": self._resolved.revision if self._resolved else str(self.revision or ""),
                "window_seconds": self.window_seconds or 0.0,
            }
        )
        return attrs

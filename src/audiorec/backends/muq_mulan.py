"""MuQ-MuLan backend: the audio tower of OpenMuQ/MuQ-MuLan-large (music-text joint embedding),
24 kHz, 10 s clips. Cached layers: MuQ's 13 hidden states (1024), the 8 MuLan transformer
layers (768) and the 512-d joint embedding `joint` (the default, l2-normalised per clip as
upstream's `extract_audio_latents`); each a mean over the clip's valid 25 Hz frames. The
network is rebuilt offline (muq_mulan_net.py); the text tower's weights are left unread.

MuLan's config names the MuQ model its audio tower was initialised from (`audio_model.name`);
that model's config.json (mel statistics, conformer config) is fetched beside the MuLan files
(or given by `muq_config:`), its weights are not: the fine-tuned MuQ is in the MuLan checkpoint.

A clip shorter than 10 s is completed with its own beginning, as upstream completes a track's
last clip (upstream uses the *track's* beginning: the two differ only for the partial last
window of a track longer than 10 s, e.g. none of Music4All's 30 s clips beyond decoder rounding).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .base import Backend, BackendError, LayerMeans, MissingWeightsError
from .hf_common import (
    ResolvedWeights,
    autocast,
    check_precision,
    effective_lengths,
    load_resolved,
    load_state_dict,
    load_strict,
    read_json,
    resolve_hub_or_local,
    spec_bool,
)
from .muq_mulan_net import MuLanAudio, mulan_architecture
from .muq_net import TRAINING_ONLY, MuQNet, muq_architecture
from .wav2vec_family import rename_checkpoint_keys

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = "OpenMuQ/MuQ-MuLan-large"
DEFAULT_MUQ = "OpenMuQ/MuQ-large-msd-iter"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
SAMPLE_RATE = 24000
MIN_SAMPLES = 2048
#: (MuQ layers, MuQ width, MuLan layers, MuLan width, joint width) of the published model
PUBLISHED = (12, 1024, 8, 768, 512)


def is_unused(key: str) -> bool:
    """Checkpoint keys (without `mulan.`) the audio tower does not read: the text tower, the
    contrastive loss, and MuQ's pretraining targets."""
    if key.startswith(("text.", "text_to_latents.", "contrast.", "multi_layer_contrastive_learning.")):
        return True
    inner = "audio.model.model."
    return key.startswith(inner) and key[len(inner):].startswith(TRAINING_ONLY)


class MuQMuLanBackend(Backend):
    type_name = "muq_mulan"
    weights_dir: Path | None = None

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__(spec)
        self.weights = str(self.spec.get("weights") or DEFAULT_WEIGHTS)
        self.muq_config: str | None = self.spec.get("muq_config")
        self.revision: str | None = self.spec.get("revision")
        self.local_files_only = spec_bool(self.spec, "local_files_only", False)
        self._resolved: ResolvedWeights | None = None
        self._config: dict[str, Any] | None = None
        self._muq_config: dict[str, Any] | None = None
        self.model: MuLanAudio | None = None
        self.device = torch.device("cpu")
        self.precision = "fp32"

    # --- files ---

    def _resolve(self, *, with_weights: bool, local_files_only: bool | None = None, cache_dir: Any = None) -> ResolvedWeights:
        offline = self.local_files_only if local_files_only is None else local_files_only
        cache = cache_dir if cache_dir is not None else self.weights_dir
        required: list[Any] = ["config.json"] + ([list(WEIGHT_FILES)] if with_weights else [])
        resolved = resolve_hub_or_local(
            self.type_name, self.weights, required, revision=self.revision, local_files_only=offline, cache_dir=cache
        )
        config = read_json(resolved.files["config.json"], backend=self.type_name)
        source = self.muq_config or str((config.get("audio_model") or {}).get("name") or DEFAULT_MUQ)
        muq = resolve_hub_or_local(self.type_name, source, ["config.json"], local_files_only=offline, cache_dir=cache)
        resolved.files["muq_config.json"] = muq.files["config.json"]
        return resolved

    def _meta(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        if self._config is None:
            try:
                resolved = self._resolve(with_weights=False, local_files_only=True)
            except MissingWeightsError:
                return None
            self._read_meta(resolved)
        assert self._config is not None and self._muq_config is not None
        return self._config, self._muq_config

    def _read_meta(self, resolved: ResolvedWeights) -> None:
        self._config = read_json(resolved.files["config.json"], backend=self.type_name)
        self._muq_config = read_json(resolved.files["muq_config.json"], backend=self.type_name)

    def _sizes(self) -> tuple[int, int, int, int, int]:
        meta = self._meta()
        if meta is None:
            return PUBLISHED
        config, muq = meta
        arch = mulan_architecture(config)
        return int(muq.get("encoder_depth", 12)), int(muq.get("encoder_dim", 1024)), arch["depth"], arch["dim"], arch["dim_latent"]

    # --- the contract ---

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def window_seconds(self) -> float | None:
        meta = self._meta()
        return float(((meta[0].get("mulan") or {}) if meta else {}).get("clip_secs", 10))

    @property
    def min_seconds(self) -> float:
        return MIN_SAMPLES / SAMPLE_RATE

    @property
    def layer_names(self) -> list[str]:
        muq_layers, _, mulan_layers, _, _ = self._sizes()
        return (["conv_subsampling"] + [f"conformer{i}" for i in range(1, muq_layers + 1)]
                + [f"mulan{i}" for i in range(1, mulan_layers + 1)] + ["joint"])

    @property
    def layer_dims(self) -> list[int]:
        muq_layers, muq_dim, mulan_layers, mulan_dim, joint = self._sizes()
        return [muq_dim] * (muq_layers + 1) + [mulan_dim] * mulan_layers + [joint]

    def prefetch(self, cache_dir: Path) -> dict[str, Any]:
        return self._resolve(with_weights=True, local_files_only=False, cache_dir=cache_dir).manifest()

    def build(self, resolved: ResolvedWeights) -> MuLanAudio:
        self._read_meta(resolved)
        assert self._config is not None and self._muq_config is not None
        weights_file = resolved.files[WEIGHT_FILES[0]]
        state = rename_checkpoint_keys(load_state_dict(weights_file, backend=self.type_name), ("mulan.",))
        audio = {k: v for k, v in state.items() if not is_unused(k)}
        inner = "audio.model.model."
        muq_state = {k[len(inner):]: v for k, v in audio.items() if k.startswith(inner)}
        try:
            muq = MuQNet(**muq_architecture(self._muq_config, muq_state))
            model = MuLanAudio(muq, **mulan_architecture(self._config))
        except (KeyError, ValueError) as err:
            raise BackendError(f"backend {self.type_name}: {weights_file} is not a MuQ-MuLan checkpoint this backend runs: {err}") from None
        computed = {inner + k: v for k, v in muq.computed_state().items()}
        load_strict(model, {**audio, **computed}, backend=self.type_name, source=str(weights_file))
        return model

    def load(self, device: Any, precision: str = "fp32") -> None:
        check_precision(precision, self.type_name)
        resolved = load_resolved(lambda offline: self._resolve(with_weights=True, local_files_only=offline), self.weights_dir)
        model = self.build(resolved)
        self._resolved = resolved
        self.device, self.precision = torch.device(device), precision
        self.model = model.to(self.device).eval()
        log.info("%s: loaded %s (revision %s)", self.type_name, self.weights, resolved.revision)

    @torch.inference_mode()
    def embed_batch(self, waves: Any, lengths: Any) -> LayerMeans:
        if self.model is None:
            raise BackendError(f"backend {self.type_name}: embed_batch before load()")
        waves = torch.as_tensor(waves, dtype=torch.float32).to(self.device)
        lengths = effective_lengths(torch.as_tensor(lengths).to(self.device), waves.shape[1], MIN_SAMPLES)
        clip = int(round((self.window_seconds or 10.0) * SAMPLE_RATE))
        # a short clip completed with its own beginning (upstream's _get_all_clips)
        wrapped = [torch.cat([waves[i, :n], waves[i, : max(0, min(n, clip - n))]]) for i, n in enumerate(lengths.tolist())]
        wrapped_lengths = torch.tensor([len(w) for w in wrapped], device=self.device)
        batch = torch.zeros(len(wrapped), int(wrapped_lengths.max()), device=self.device)
        for i, w in enumerate(wrapped):
            batch[i, : len(w)] = w
        with autocast(self.device, self.precision):
            layers, _ = self.model.layer_means(batch, wrapped_lengths)
        width = max(x.shape[1] for x in layers)
        means = torch.stack([torch.nn.functional.pad(x.float(), (0, width - x.shape[1])) for x in layers], dim=1)
        frames = self.model.muq.conv.out_frames(self.model.muq.mel_frames(lengths))[-1]  # the true audio's share
        return LayerMeans(means=means.cpu(), frames=frames.clamp(min=1).cpu())

    def attributes(self) -> dict[str, Any]:
        attrs = super().attributes()
        attrs.update(
            {
                "weights": self.weights,
                "revision": self._resolved.revision if self._resolved else str(self.revision or ""),
                "window_seconds": self.window_seconds or 0.0,
                "pooling": "mean over valid frames per 10 s clip (short clips completed with their start); joint l2-normalised per clip",
            }
        )
        return attrs

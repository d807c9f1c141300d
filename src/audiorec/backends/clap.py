"""LAION-CLAP for music (laion/larger_clap_music): the audio side of transformers' ClapModel.

The published folder holds a whole `ClapModel` (audio tower HTSAT + a RoBERTa text tower,
config.json, model.safetensors/pytorch_model.bin) and a `ClapFeatureExtractor`
(preprocessor_config.json). Only the audio side runs here: the checkpoint's `audio_model.*`
and `audio_projection.*` load strictly into `ClapAudioModelWithProjection` (same names);
the text tower's keys (`text_model.*`, `text_projection.*`, `logit_scale_*`) are the only
ones left unread, and `unused_checkpoint_keys` says so for the key-coverage test.

Input: 48 kHz, windows of the extractor's `max_length_s` (10 s). The published extractor
turns a clip into a log-mel of exactly 10 s: a shorter clip is repeated and zero-padded
(`padding: repeatpad`); a longer one is either cut at a random offset (`truncation:
rand_trunc`) or, for fusion models, summarised by a shrunk whole plus three random 10 s
crops (`fusion`), with `is_longer` switching the fusion branch on. Random crops would make a
track's vector depend on the seed, so the engine cuts the track into 10 s windows instead and
each window goes through the published extractor unchanged (nothing is ever longer than
max_length, so no randomness is reached). One more randomness is not repeated: for fusion
models the extractor flags one random item of a batch as `is_longer` when none is, which
makes an item's vector depend on its batch-mates; here `is_longer` is False for every window.

Cached layers (time-frequency mean of each HTSAT stage's output, then the pooled output and
the joint embedding): patch_embed, stage1..stageN, pooled, projection. `projection` (the
default, the last) is `ClapModel.get_audio_features`: the 512-d audio projection,
L2-normalised per window as CLAP's text-audio similarity uses it. Windows of one track are
pooled by their true length (a 3 s tail counts 3/10 of a full window).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from .base import Backend, BackendError, LayerMeans, MissingWeightsError
from .hf_common import (
    ResolvedWeights,
    autocast,
    check_precision,
    load_resolved,
    load_state_dict,
    load_strict,
    read_json,
    resolve_hub_or_local,
    spec_bool,
)

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = "laion/larger_clap_music"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
#: checkpoint prefixes of the text tower, which audio embedding never reads
TEXT_PREFIXES = ("text_model.", "text_projection.", "logit_scale_a", "logit_scale_t")
#: (patch_embeds_hidden_size, stages, projection_dim) of the published music/general checkpoints
#: (HTSAT-base), so layers are declared before the config is on this machine
KNOWN: dict[str, tuple[int, int, int]] = {
    "laion/larger_clap_music": (128, 4, 512),
    "laion/larger_clap_general": (128, 4, 512),
    "laion/larger_clap_music_and_speech": (128, 4, 512),
}
DEFAULT_RATE = 48000
DEFAULT_WINDOW = 10.0


def unused_checkpoint_keys(keys: list[str]) -> list[str]:
    """The checkpoint keys the audio side does not read: the text tower's."""
    return [k for k in keys if k.startswith(TEXT_PREFIXES)]


class ClapBackend(Backend):
    type_name = "clap"
    weights_dir: Path | None = None
    known: ClassVar[dict[str, tuple[int, int, int]]] = KNOWN

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__(spec)
        self.weights = str(self.spec.get("weights") or DEFAULT_WEIGHTS)
        self.revision: str | None = self.spec.get("revision")
        self.local_files_only = spec_bool(self.spec, "local_files_only", False)
        self._resolved: ResolvedWeights | None = None
        self._config: dict[str, Any] | None = None
        self._preprocessor: dict[str, Any] | None = None
        self.model: Any = None
        self.extractor: Any = None
        self.device = torch.device("cpu")
        self.precision = "fp32"

    # --- files ---

    def _resolve(self, *, with_weights: bool, local_files_only: bool | None = None, cache_dir: Any = None) -> ResolvedWeights:
        required: list[Any] = ["config.json", "preprocessor_config.json"]
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
        """config.json when it is on this machine (never downloads)."""
        if self._config is None:
            try:
                resolved = self._resolve(with_weights=False, local_files_only=True)
            except MissingWeightsError:
                return None
            self._read_meta(resolved)
        return self._config

    def _read_meta(self, resolved: ResolvedWeights) -> None:
        self._config = read_json(resolved.files["config.json"], backend=self.type_name)
        self._preprocessor = read_json(resolved.files["preprocessor_config.json"], backend=self.type_name)

    def _sizes(self) -> tuple[int, int, int]:
        config = self._meta()
        if config is not None:
            audio = config.get("audio_config", {})
            return (
                int(audio.get("patch_embeds_hidden_size", 96)),
                len(audio.get("depths", [2, 2, 6, 2])),
                int(config.get("projection_dim", 512)),
            )
        if self.weights in self.known:
            return self.known[self.weights]
        raise MissingWeightsError(
            f"backend clap: cannot find config.json of '{self.weights}' to know its layers; run the "
            "fetch_weights job first or set `weights:` to a folder holding the model."
        )

    # --- the contract ---

    @property
    def sample_rate(self) -> int:
        self._meta()
        return int((self._preprocessor or {}).get("sampling_rate", DEFAULT_RATE))

    @property
    def window_seconds(self) -> float | None:
        self._meta()
        return float((self._preprocessor or {}).get("max_length_s", DEFAULT_WINDOW))

    @property
    def min_seconds(self) -> float:
        return 0.1  # repeat-padding makes anything non-empty a full window; 0.1 s keeps it audible

    @property
    def layer_names(self) -> list[str]:
        _, stages, _ = self._sizes()
        return ["patch_embed", *[f"stage{i}" for i in range(1, stages + 1)], "pooled", "projection"]

    @property
    def layer_dims(self) -> list[int]:
        width, stages, projection = self._sizes()
        dims = [width * 2 ** min(i, stages - 1) for i in range(stages + 1)]  # the last stage does not merge
        return [*dims, width * 2 ** (stages - 1), projection]

    def prefetch(self, cache_dir: Path) -> dict[str, Any]:
        return self._resolve(with_weights=True, local_files_only=False, cache_dir=cache_dir).manifest()

    def load(self, device: Any, precision: str = "fp32") -> None:
        from transformers import (
            ClapAudioModelWithProjection,
            ClapConfig,
            ClapFeatureExtractor,
        )

        check_precision(precision, self.type_name)
        resolved = load_resolved(lambda offline: self._resolve(with_weights=True, local_files_only=offline), self.weights_dir)
        self._resolved = resolved
        self._read_meta(resolved)
        assert self._config is not None and self._preprocessor is not None
        config = ClapConfig(**{k: v for k, v in self._config.items() if k not in ("architectures", "transformers_version")})
        model = ClapAudioModelWithProjection(config.audio_config)
        weights_file = resolved.files[WEIGHT_FILES[0]]
        state = load_state_dict(weights_file, backend=self.type_name)
        audio = {k: v for k, v in state.items() if k not in set(unused_checkpoint_keys(list(state)))}
        if not any(k.startswith("audio_model.") for k in audio):
            raise BackendError(f"backend clap: {weights_file} holds no `audio_model.*` weights; is it a ClapModel checkpoint?")
        # BatchNorm's step counter is not used in eval and older conversions did not save it
        for name, buf in model.state_dict().items():
            if name.endswith("num_batches_tracked") and name not in audio:
                audio[name] = buf
        load_strict(model, audio, backend=self.type_name, source=str(weights_file))
        extractor_settings = {k: v for k, v in self._preprocessor.items() if k not in ("feature_extractor_type", "processor_class")}
        self.extractor = ClapFeatureExtractor(**extractor_settings)
        self.device, self.precision = torch.device(device), precision
        self.model = model.to(self.device).eval()
        log.info(
            "clap: loaded %s (revision %s): %d Hz, %.0f s windows, truncation=%s, fusion=%s",
            self.weights, resolved.revision, self.sample_rate, self.window_seconds,
            self.extractor.truncation, config.audio_config.enable_fusion,
        )

    def features(self, waves: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The published extractor on each item's valid samples ([B, C, T, F] log-mels)."""
        assert self.extractor is not None
        rate = self.extractor.sampling_rate
        items = [waves[i, : int(n)].double().cpu().numpy() for i, n in enumerate(lengths.tolist())]
        out = self.extractor(items, sampling_rate=rate, return_tensors="np")
        return torch.from_numpy(np.asarray(out["input_features"], dtype=np.float32))

    @torch.inference_mode()
    def embed_batch(self, waves: Any, lengths: Any) -> LayerMeans:
        if self.model is None:
            raise BackendError("backend clap: embed_batch before load()")
        waves = torch.as_tensor(waves, dtype=torch.float32)
        lengths = torch.as_tensor(lengths).to(torch.long).clamp(min=1, max=waves.shape[1])
        mels = self.features(waves, lengths).to(self.device)
        is_longer = torch.zeros(mels.shape[0], 1, dtype=torch.bool, device=self.device)
        with autocast(self.device, self.precision):
            out = self.model.audio_model(input_features=mels, is_longer=is_longer, output_hidden_states=True)
            projected = torch.nn.functional.normalize(self.model.audio_projection(out.pooler_output).float(), dim=-1)
        stages = [h.float().mean(dim=(2, 3)) for h in out.hidden_states]  # [B, C, H, W] -> [B, C]
        layers = [*stages, out.pooler_output.float(), projected]
        width = max(x.shape[1] for x in layers)
        means = torch.stack([torch.nn.functional.pad(x, (0, width - x.shape[1])) for x in layers], dim=1)
        hop = int(self.extractor.hop_length)
        frames = torch.div(lengths, hop, rounding_mode="floor").clamp(min=1)
        return LayerMeans(means=means.cpu(), frames=frames.cpu())

    def attributes(self) -> dict[str, Any]:
        attrs = super().attributes()
        attrs.update(
            {
                "weights": self.weights,
                "revision": self._resolved.revision if self._resolved else str(self.revision or ""),
                "window_seconds": self.window_seconds or 0.0,
                "pooling": "time-frequency mean per window; windows weighted by their length",
            }
        )
        return attrs

"""MULE (McCallum et al., ISMIR 2022; SiriusXM/Pandora): SF-NFNet-F0 on 96-band log-mel
slices at 16 kHz, one 1728-d vector (1536 slow + 192 fast pathway, global average pooled) per
3 s slice, averaged over the clip's slices (2 s apart).

The official model is Keras/TF (PandoraMedia/music-audio-representations, GPL-3.0, weights
CC BY-NC 4.0, a `model.keras` in git LFS), which needs TensorFlow and SCOOCH. This backend
runs the *unofficial* PyTorch port `mule-torch==0.2.0` (PyPI, GPL-3.0-only, M. Spanio): it
re-implements the architecture (`SfNfNetF0`: weight-standardised convs, scaled GELU,
squeeze-excite, fast-to-slow fusion) and the official front end (librosa HTK mel with
`norm=2`, log10(10000 x + 1), `SliceExtractor`'s standard-normalised 96x300 slices every 200
frames), and ships the Keras weights converted to `model.safetensors` + `config.json`
(`matteospanio/mule` on the hub); its README reports parity with the Keras model on the
reference waveform. The package is imported, never copied (its licence is GPL-3.0), and only
its modules are used: weights are found and read here (safetensors, `local_files_only`
honoured, strict key check), not by its `from_pretrained`.

Amplitude: the official reader divides 16-bit PCM by 2^16 and *sums* the channels, so a
stereo file enters at the scale of our mono mix (mean of channels, [-1, 1]) and a mono file at
half of it; `input_gain` (default 1.0, the stereo case: Music4All's clips are stereo) scales
the waveform before the mel, whose log compression is not scale-invariant.

One cached layer (`embedding`, 1728): the model's published output. A padded batch gives the
lone-clip result: each clip's mel and slices are computed from its own samples.
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
    load_resolved,
    load_state_dict,
    load_strict,
    read_json,
    resolve_hub_or_local,
    spec_bool,
)

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = "matteospanio/mule"
SAMPLE_RATE = 16000
EMBEDDING_DIM = 1728
#: the STFT's reflect padding needs more than n_fft/2 samples
MIN_SAMPLES = 2048
#: buffers mule-torch computes (its fixed DFT matrices), which older conversions do not store
COMPUTED_PREFIX = "frontend.stft."


class MuleBackend(Backend):
    type_name = "mule"
    weights_dir: Path | None = None

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__(spec)
        self.weights = str(self.spec.get("weights") or DEFAULT_WEIGHTS)
        self.revision: str | None = self.spec.get("revision")
        self.local_files_only = spec_bool(self.spec, "local_files_only", False)
        self.input_gain = float(self.spec.get("input_gain", 1.0))
        self._resolved: ResolvedWeights | None = None
        self._config: dict[str, Any] | None = None
        self.model: Any = None
        self.device = torch.device("cpu")
        self.precision = "fp32"

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def window_seconds(self) -> float | None:
        return 30.0

    @property
    def min_seconds(self) -> float:
        return MIN_SAMPLES / SAMPLE_RATE

    @property
    def layer_names(self) -> list[str]:
        return ["embedding"]

    @property
    def layer_dims(self) -> list[int]:
        """1728 for the published model; a checkpoint of another size says its own."""
        if self._config is None:
            try:
                resolved = self._resolve(local_files_only=True)
                self._config = read_json(resolved.files["config.json"], backend=self.type_name)
            except MissingWeightsError:
                return [EMBEDDING_DIM]
        return [int(self._config.get("embedding_dim", EMBEDDING_DIM))]

    def _resolve(self, *, local_files_only: bool | None = None, cache_dir: Any = None) -> ResolvedWeights:
        return resolve_hub_or_local(
            self.type_name,
            self.weights,
            ["config.json", "model.safetensors"],
            revision=self.revision,
            local_files_only=self.local_files_only if local_files_only is None else local_files_only,
            cache_dir=cache_dir if cache_dir is not None else self.weights_dir,
        )

    def prefetch(self, cache_dir: Path) -> dict[str, Any]:
        return self._resolve(local_files_only=False, cache_dir=cache_dir).manifest()

    def build(self, resolved: ResolvedWeights) -> Any:
        """mule-torch's MuleModel with the checkpoint's weights, every stored key consumed."""
        from mule_torch import MuleConfig, MuleModel

        self._config = read_json(resolved.files["config.json"], backend=self.type_name)
        config = MuleConfig.from_dict(self._config)
        state = load_state_dict(resolved.files["model.safetensors"], backend=self.type_name)
        if "frontend.mel_fb" not in state:
            raise BackendError(
                f"backend mule: {resolved.files['model.safetensors']} has no `frontend.mel_fb`; "
                "is it a mule-torch conversion (matteospanio/mule)?"
            )
        model = MuleModel(config, mel_fb=state["frontend.mel_fb"])
        computed = {k: v for k, v in model.state_dict().items() if k.startswith(COMPUTED_PREFIX) and k not in state}
        load_strict(model, {**state, **computed}, backend=self.type_name, source=str(resolved.files["model.safetensors"]))
        widths = config.slow_stage_out[-1] + config.fast_stage_out[-1]
        if model.embedding_dim != widths:
            raise BackendError(f"backend mule: config.json says embedding_dim {model.embedding_dim}, its stages give {widths}")
        return model

    def load(self, device: Any, precision: str = "fp32") -> None:
        check_precision(precision, self.type_name)
        resolved = load_resolved(lambda offline: self._resolve(local_files_only=offline), self.weights_dir)
        model = self.build(resolved)
        self._resolved = resolved
        self.device, self.precision = torch.device(device), precision
        self.model = model.to(self.device).eval()
        log.info("mule: loaded %s (revision %s), input gain %s", self.weights, resolved.revision, self.input_gain)

    @torch.inference_mode()
    def embed_batch(self, waves: Any, lengths: Any) -> LayerMeans:
        if self.model is None:
            raise BackendError("backend mule: embed_batch before load()")
        from mule_torch.frontend import slice_mel

        waves = torch.as_tensor(waves, dtype=torch.float32).to(self.device) * self.input_gain
        lengths = torch.as_tensor(lengths).to(torch.long).clamp(min=MIN_SAMPLES, max=waves.shape[1])
        # each clip's own mel and slices (the mel of a padded batch would smear padding into
        # its last frames and add slices of silence)
        per_clip = [slice_mel(self.model.frontend(waves[i : i + 1, : int(n)])[0], self.model.config) for i, n in enumerate(lengths.tolist())]
        counts = [s.shape[0] for s in per_clip]
        with autocast(self.device, self.precision):
            slices = self.model.backbone(torch.cat(per_clip, dim=0)).float()
        means = torch.stack([s.mean(dim=0) for s in torch.split(slices, counts, dim=0)])
        return LayerMeans(means=means[:, None, :].cpu(), frames=torch.tensor(counts))

    def attributes(self) -> dict[str, Any]:
        attrs = super().attributes()
        attrs.update(
            {
                "weights": self.weights,
                "revision": self._resolved.revision if self._resolved else str(self.revision or ""),
                "input_gain": self.input_gain,
                "implementation": "mule-torch 0.2.0 (unofficial PyTorch port of the Keras MULE)",
                "pooling": "mean over 3 s slices every 2 s",
            }
        )
        return attrs

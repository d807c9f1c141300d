"""MuQ (Zhu et al. 2025, "MuQ: Self-Supervised Music Representation Learning with Mel Residual
Vector Quantization"; tencent-ailab/MuQ, MIT; PyPI `muq==0.1.0`) rebuilt offline.

MuQ's inference path is MusicFM's (same authors' lineage): a 128-band dB mel spectrogram at
24 kHz (n_fft 2048, hop 240), normalised by the checkpoint's statistics (`stat` in
config.json), a 2-block residual Conv2d subsampling to 25 Hz, and a transformers
`Wav2Vec2ConformerEncoder` built from the `w2v2_config` in config.json; hidden states are the
conformer input and each layer's output, the last after the final LayerNorm. So the network
here is `musicfm_net.MusicFM` with three differences, all read off the published files:

* the mel filterbank and Hann window are *not* in MuQ's checkpoint (its `MelSTFT` is a plain
  object around torchaudio's `MelSpectrogram`); they are computed here as torchaudio does
  (`htk_mel_filterbank`, checked against librosa's HTK filterbank in the tests);
* the conformer's config comes from the checkpoint (`w2v2_config`), not a fixed one;
* the pretraining targets (a random-projection quantiser `quantizer_melspec_2048` or the
  Mel-RVQ `rvq`, and `recon_proj`) are training-only and not built (`TRAINING_ONLY`).

The published `OpenMuQ/MuQ-large-msd-iter` is `PyTorchModelHubMixin`'s layout: config.json
(the `MuQConfig` fields) and model.safetensors with keys `model.{conv,conformer,linear,...}`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from .musicfm_net import MusicFM

#: checkpoint key prefixes (after `model.`) of the pretraining targets, never run at inference
TRAINING_ONLY = ("quantizer_", "rvq.", "recon_proj.")
#: config.json keys of w2v2_config that are not Wav2Vec2ConformerConfig arguments
_NOT_CONFIG = ("model_type", "architectures", "_name_or_path", "transformers_version", "auto_map", "torch_dtype")


def htk_mel_filterbank(n_freqs: int, n_mels: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None) -> torch.Tensor:
    """[n_freqs, n_mels] triangular filters on the HTK mel scale, unnormalised: what
    torchaudio.transforms.MelSpectrogram builds with its defaults (melscale_fbanks, htk, norm None)."""
    f_max = float(sample_rate // 2) if f_max is None else f_max
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float64)
    m_min = 2595.0 * math.log10(1.0 + f_min / 700.0)
    m_max = 2595.0 * math.log10(1.0 + f_max / 700.0)
    m_pts = torch.linspace(m_min, m_max, n_mels + 2, dtype=torch.float64)
    f_pts = 700.0 * (10 ** (m_pts / 2595.0) - 1.0)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[None, :] - all_freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.minimum(down, up), min=0.0).to(torch.float32)


class MuQNet(MusicFM):
    """MuQModel's inference path with its parameter names (see the module docstring)."""

    def __init__(
        self,
        *,
        n_fft: int = 2048,
        hop_length: int = 240,
        n_mels: int = 128,
        conv_dim: int = 512,
        encoder_dim: int = 1024,
        encoder_depth: int = 12,
        codebook_size: int = 4096,
        w2v2_config: Mapping[str, Any] | None = None,
        stats: Mapping[str, float] | None = None,
        sample_rate: int = 24000,
    ) -> None:
        conformer = {k: v for k, v in (w2v2_config or {}).items() if k not in _NOT_CONFIG and not k.startswith("_")}
        conformer.update({"num_hidden_layers": encoder_depth, "hidden_size": encoder_dim})
        super().__init__(
            n_fft=n_fft, n_mels=n_mels, conv_dim=conv_dim, encoder_dim=encoder_dim,
            codebook_dim=1, codebook_size=codebook_size, conformer=conformer, stats=stats,
        )
        del self.quantizer_melspec_2048_0  # MuQ's targets are training-only (TRAINING_ONLY)
        mel = self.preprocessor_melspec_2048
        mel.hop_length = hop_length
        mel.mel_stft.mel_scale.fb.copy_(htk_mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate))
        mel.mel_stft.spectrogram.window.copy_(torch.hann_window(n_fft))

    def computed_state(self) -> dict[str, torch.Tensor]:
        """The buffers MuQ computes rather than stores (mel filterbank, window), by state-dict name."""
        return {k: v for k, v in self.state_dict().items() if k.startswith("preprocessor_melspec_2048.")}


def muq_architecture(config: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """MuQNet's arguments from config.json (MuQConfig fields) and the checkpoint's shapes."""
    label_rate = int(config.get("label_rate", 25))
    if label_rate != 25:
        raise ValueError(f"label_rate {label_rate}: only the 25 Hz MuQ (4x subsampling) is implemented")
    features = list(config.get("features", ["melspec_2048"]))
    if features != ["melspec_2048"]:
        raise ValueError(f"features {features}: only ['melspec_2048'] (MuQ's published input) is implemented")
    stats = config.get("stat") or {}
    for key in ("melspec_2048_mean", "melspec_2048_std"):
        if key not in stats:
            raise ValueError(f"config.json has no stat.{key}")
    return {
        "hop_length": int(config.get("hop_length", 240)),
        "n_mels": int(config.get("n_mels", 128)),
        "conv_dim": int(state["conv.conv.0.conv1.weight"].shape[0]),
        "encoder_dim": int(state["conv.linear.weight"].shape[0]),
        "encoder_depth": len({int(k.split(".")[2]) for k in state if k.startswith("conformer.layers.")}),
        "codebook_size": int(state["linear.weight"].shape[0]),
        "w2v2_config": dict(config.get("w2v2_config") or {}),
        "stats": {k: float(stats[k]) for k in ("melspec_2048_mean", "melspec_2048_std")},
    }

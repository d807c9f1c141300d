"""A batched log-mel front end in torch that reproduces librosa's conventions.

Why not librosa itself: extraction runs on batches of zero-padded waveforms on CPU or GPU,
and librosa works one NumPy clip at a time. This module matches
`librosa.feature.melspectrogram(y, sr, n_fft, hop_length, n_mels)` (librosa >= 0.10
defaults: periodic Hann window, centred frames with zero padding, power 2, Slaney mel
scale, Slaney area normalisation, fmin 0, fmax sr/2), which tests/unit/test_musicnn.py
checks against librosa. Self-contained: it needs only numpy and torch.

Zero (constant) centre padding also makes the frames of a clip independent of how much
batch padding follows it: frame t only sees samples [t*hop - n_fft/2, t*hop + n_fft/2),
so the first `1 + length // hop` frames of a padded clip equal those of the clip alone.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

_F_SP = 200.0 / 3  # Slaney: linear below 1 kHz, 3 mels per 200 Hz
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's auditory-toolbox mel scale (librosa's default, htk=False)."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / _F_SP
    log_region = hz >= _MIN_LOG_HZ
    return np.where(log_region, _MIN_LOG_MEL + np.log(np.maximum(hz, 1e-10) / _MIN_LOG_HZ) / _LOGSTEP, mel)


def mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    hz = _F_SP * mel
    log_region = mel >= _MIN_LOG_MEL
    return np.where(log_region, _MIN_LOG_HZ * np.exp(_LOGSTEP * (mel - _MIN_LOG_MEL)), hz)


def slaney_mel_filterbank(
    sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """Triangular filters [n_mels, 1 + n_fft // 2] with Slaney area normalisation, as librosa.filters.mel."""
    fmax = sr / 2.0 if fmax is None else fmax
    fft_freqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def n_frames(n_samples: int | torch.Tensor, hop: int) -> int | torch.Tensor:
    """Frames a centred STFT gives for a clip of `n_samples` samples."""
    return 1 + n_samples // hop


class MelSpectrogram(nn.Module):
    """waves [B, T] float -> power mel spectrogram [B, frames, n_mels] float32 (time first, as musicnn)."""

    def __init__(self, sr: int, n_fft: int, hop: int, n_mels: int) -> None:
        super().__init__()
        self.sr, self.n_fft, self.hop, self.n_mels = sr, n_fft, hop, n_mels
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True, dtype=torch.float32), persistent=False)
        basis = torch.from_numpy(slaney_mel_filterbank(sr, n_fft, n_mels))
        self.register_buffer("mel_basis_t", basis.T.contiguous(), persistent=False)  # [bins, mels]

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        waves = waves.to(torch.float32)
        spec = torch.stft(
            waves,
            n_fft=self.n_fft,
            hop_length=self.hop,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )  # [B, bins, frames]
        power = spec.real.square() + spec.imag.square()
        return torch.matmul(power.transpose(1, 2), self.mel_basis_t)


def log_compress(mel: torch.Tensor, scale: float = 10000.0) -> torch.Tensor:
    """musicnn's `log10(10000 * x + 1)`, kept in float32 (see docs/musicnn.md on float16)."""
    return torch.log10(mel * scale + 1.0)

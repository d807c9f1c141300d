"""Synthetic music clips for the MusiCNN benchmark and parity check (numpy + soundfile only,
so that both the project venv and the TensorFlow reference venv can import it).

Each clip is a seeded mix of plucked harmonic notes, chords, a noise-burst drum pattern and a
slow chirp, normalised to a peak `gain`. The default gain (0.05) keeps musicnn's float16
mel spectrogram below its overflow (10000 * mel must stay under 65504): quiet enough that
the original extractor gives finite outputs, which the parity check needs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def synth_clip(seed: int, seconds: float = 30.0, sr: int = 44100, gain: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    y = np.zeros(n)
    root = 55.0 * 2 ** (rng.integers(0, 24) / 12)
    tempo = rng.uniform(80, 160)
    beat = 60.0 / tempo
    # notes and chords
    for _ in range(int(seconds * 3)):
        start = rng.uniform(0, seconds)
        length = rng.uniform(0.1, 1.5)
        pitches = [root * 2 ** (rng.integers(0, 36) / 12)]
        if rng.random() < 0.3:
            pitches += [pitches[0] * 2 ** (4 / 12), pitches[0] * 2 ** (7 / 12)]
        i0, i1 = int(start * sr), min(n, int((start + length * 4) * sr))
        tt = t[i0:i1] - start
        env = np.exp(-tt / length * 3) * np.minimum(1.0, tt * 200)
        for f0 in pitches:
            for h in range(1, int(rng.integers(2, 8))):
                if f0 * h < 7900:
                    y[i0:i1] += env * np.sin(2 * np.pi * f0 * h * tt + rng.uniform(0, 6.28)) / h**1.2
    # drums: kick (low sine sweep) and hats (filtered noise bursts)
    for k, b in enumerate(np.arange(0, seconds, beat / 2)):
        i0 = int(b * sr)
        m = min(n - i0, int(0.2 * sr))
        tt = np.arange(m) / sr
        if k % 2 == 0:
            y[i0 : i0 + m] += 1.5 * np.sin(2 * np.pi * (60 + 80 * np.exp(-tt * 30)) * tt) * np.exp(-tt * 15)
        noise = rng.standard_normal(m) * np.exp(-tt * 60)
        y[i0 : i0 + m] += 0.4 * np.diff(noise, prepend=0.0)
    # a slow chirp
    y += 0.2 * np.sin(2 * np.pi * (200 * t + 40 * t**2 / seconds)) * (0.5 + 0.5 * np.sin(2 * np.pi * t / 7))
    y *= gain / np.max(np.abs(y))
    return y.astype(np.float32)


def write_clips(folder: Path, n: int, seconds: float = 30.0, gain: float = 0.05, fmt: str = "mp3", seed: int = 0) -> list[Path]:
    """n clips as 44.1 kHz files (Music4All's format is 44.1 kHz mp3)."""
    import soundfile as sf

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"clip{i:03d}.{fmt}"
        if not path.exists():
            sf.write(path, synth_clip(seed + i, seconds, gain=gain), 44100)
        paths.append(path)
    return paths

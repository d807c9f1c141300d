"""Probing and decoding audio files with libsndfile (soundfile) and resampling with soxr.

libsndfile reads mp3 (mpg123), wav, flac and ogg/vorbis without ffmpeg, so the same code
runs on a workstation and on a cluster node. Decoding is the one place a broken file
shows itself; every problem becomes an `AudioError` whose `reason` ends up in the
failures table, never an exception that stops a whole extraction job.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: extensions indexed under `audios/`, in the order preferred when a track has several files
AUDIO_EXTENSIONS: tuple[str, ...] = (".mp3", ".flac", ".wav", ".ogg")

#: a decoded clip shorter than this share of the frames its header announces is taken as
#: truncated (a cut download): mp3 headers are estimates, so a small shortfall is normal.
MIN_DECODED_SHARE = 0.9


class AudioError(Exception):
    """A clip that cannot be used; `reason` is a short, table-friendly explanation."""

    def __init__(self, reason: str, stage: str = "decode") -> None:
        super().__init__(reason)
        self.reason = reason
        self.stage = stage


@dataclass(frozen=True)
class ProbeResult:
    """What the header of one file says, or why it could not be read (`status` != "ok")."""

    status: str  # ok | missing | empty | unreadable
    reason: str = ""
    sample_rate: int | None = None
    channels: int | None = None
    frames: int | None = None
    format: str | None = None

    @property
    def duration(self) -> float | None:
        if self.frames is None or not self.sample_rate:
            return None
        return self.frames / self.sample_rate


def _libsndfile_reason(exc: Exception, what: str = "unreadable") -> str:
    msg = str(exc)
    # libsndfile says "File does not exist or is not a regular file" for any file whose
    # format it does not recognise; the caller has already checked that the file exists.
    if "does not exist or is not a regular file" in msg or "Format not recognised" in msg:
        return "not a decodable audio file (libsndfile does not recognise its format)"
    detail = msg.split(": ", 1)[-1] if ": " in msg else msg
    return f"{what} (libsndfile: {detail.strip()})"


def probe(path: str | os.PathLike[str]) -> ProbeResult:
    """Read one file's header only (fast: no decoding)."""
    import soundfile as sf

    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        return ProbeResult("missing", "audio file not found")
    except OSError as exc:
        return ProbeResult("unreadable", f"cannot stat file: {exc}")
    if size == 0:
        return ProbeResult("empty", "file is empty (0 bytes)")
    try:
        info = sf.info(str(p))
    except Exception as exc:  # libsndfile raises its own error types, and RuntimeError on odd input
        return ProbeResult("unreadable", _libsndfile_reason(exc, "unreadable header"))
    if info.frames <= 0 or info.samplerate <= 0:
        return ProbeResult(
            "empty", "no audio frames in file", int(info.samplerate), int(info.channels), int(info.frames), info.format
        )
    return ProbeResult("ok", "", int(info.samplerate), int(info.channels), int(info.frames), info.format)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Mean over channels ([T, C] -> [T]), as librosa.to_mono does."""
    if audio.ndim == 1:
        return audio
    if audio.shape[1] == 1:
        return audio[:, 0]
    return audio.mean(axis=1, dtype=np.float32)


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """soxr "HQ" resampling, the default of librosa.load, so MFCCs match librosa's own."""
    if from_rate == to_rate:
        return audio
    import soxr

    return np.asarray(soxr.resample(audio, from_rate, to_rate, quality="HQ"), dtype=np.float32)


def decode(
    path: str | os.PathLike[str],
    sample_rate: int,
    expected_frames: int | None = None,
) -> np.ndarray:
    """Decode a file to float32 mono at `sample_rate`.

    `expected_frames` (the probe's header frame count at the file's own rate) lets a cut
    file be told from a whole one: libsndfile decodes what is there and stops quietly.
    Raises AudioError for anything that makes the clip unusable.
    """
    import soundfile as sf

    p = Path(path)
    if not p.exists():
        raise AudioError("audio file not found")
    if p.stat().st_size == 0:
        raise AudioError("file is empty (0 bytes)")
    try:
        audio, file_rate = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioError(_libsndfile_reason(exc, "corrupt: decoding failed")) from None
    n = audio.shape[0]
    if n == 0:
        raise AudioError("no audio frames decoded")
    if expected_frames and n < MIN_DECODED_SHARE * expected_frames:
        raise AudioError(
            f"truncated or corrupt: decoded {n} of the {expected_frames} frames its header announces "
            f"({n / file_rate:.2f} s of {expected_frames / file_rate:.2f} s)"
        )
    mono = to_mono(audio)
    if not np.isfinite(mono).all():
        raise AudioError("decoded samples contain NaN or inf")
    out = resample(np.ascontiguousarray(mono), int(file_rate), int(sample_rate))
    if out.size == 0:
        raise AudioError(f"clip too short to resample to {sample_rate} Hz")
    return out

"""MFCC statistics: the hand-crafted baseline of the paper (Music4All-Onion's `id_mfcc_stats`).

A track vector is the 13 MFCC means followed by the 91 upper-triangle entries (diagonal
included, row-major, the order of `numpy.triu_indices`) of their covariance over frames:
104 dims. Conventions are librosa's defaults, so `librosa.feature.mfcc` on the same audio
gives the same numbers: audio resampled to 22 050 Hz (soxr HQ, librosa.load's default),
2048-point STFT with a periodic Hann window and hop 512, centred frames with zero
padding, power spectrogram, 128 Slaney-normalised mel bands from 0 Hz to Nyquist,
`power_to_db(ref=1, amin=1e-10, top_db=80)`, orthonormal DCT-II, the first 13
coefficients, no liftering; covariance with the unbiased (N-1) normalisation of
`numpy.cov`. It runs as batched torch tensor operations so that it shares the engine's
batching, threads and GPU with the neural backends; the spectrogram is always float32.

With `source: dataset` the vectors are read from the dataset's `id_mfcc_stats.tsv[.bz2]`
(`id` + 104 columns, as Music4All-Onion ships them) instead; tracks missing there are
recorded as failures.

Silence: a digitally silent clip gives -100 dB in every mel band, so its MFCCs are the
constant vector (-100·sqrt(128), 0, ..., 0) and their covariance is zero: a finite vector,
the same for every silent clip. A clip shorter than two frames (about 23 ms) is
zero-padded to two frames, so its covariance is defined.
"""

from __future__ import annotations

import bz2
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .base import Backend, BackendError, LayerMeans

STATS_FILE = "id_mfcc_stats.tsv"


def mfcc_stats_dim(n_mfcc: int) -> int:
    return n_mfcc + n_mfcc * (n_mfcc + 1) // 2


class MFCCBackend(Backend):
    """13 MFCC means + upper triangle of their covariance (104 dims), computed or read."""

    type_name: ClassVar[str] = "mfcc"
    has_weights: ClassVar[bool] = False

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__(spec)
        self.source: str = self.spec.get("source", "audio")
        if self.source not in ("audio", "dataset"):
            raise BackendError(f"mfcc: source {self.source!r} is not one of audio, dataset.")
        # an instance that reads the dataset's table needs no audio (see PrecomputedBackend)
        self.needs_audio = self.source == "audio"
        self.n_mfcc = int(self.spec.get("n_mfcc", 13))
        self.n_fft = int(self.spec.get("n_fft", 2048))
        self.hop_length = int(self.spec.get("hop_length", 512))
        self.n_mels = int(self.spec.get("n_mels", 128))
        self._sample_rate = int(self.spec.get("sample_rate", 22050))
        if self.source == "dataset" and self.n_mfcc != 13:
            raise BackendError(
                "mfcc: `source: dataset` reads Music4All-Onion's 13-coefficient statistics; drop n_mfcc."
            )
        self._device: Any = None
        self._table: tuple[Path, dict[str, np.ndarray]] | None = None

    # --- declarations ---

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def window_seconds(self) -> float | None:
        # covariance does not pool over windows: always the whole clip in one pass
        return None

    @property
    def min_seconds(self) -> float:
        return self.hop_length / self._sample_rate

    @property
    def layer_names(self) -> list[str]:
        return ["mfcc_stats"]

    @property
    def layer_dims(self) -> list[int]:
        return [mfcc_stats_dim(self.n_mfcc)]

    def attributes(self) -> dict[str, Any]:
        attrs = super().attributes()
        attrs["pooling"] = "mean and covariance (N-1) over frames, upper triangle row-major"
        attrs["mfcc_source"] = self.source
        if self.source == "audio":
            attrs.update(n_mfcc=self.n_mfcc, n_fft=self.n_fft, hop_length=self.hop_length, n_mels=self.n_mels)
        return attrs

    # --- computing from audio ---

    def load(self, device: Any, precision: str = "fp32") -> None:
        import librosa
        import scipy.fft
        import torch

        self._device = device
        mel = librosa.filters.mel(sr=self._sample_rate, n_fft=self.n_fft, n_mels=self.n_mels)
        dct = scipy.fft.dct(np.eye(self.n_mels), type=2, norm="ortho", axis=0)[: self.n_mfcc]
        self._mel = torch.as_tensor(mel, dtype=torch.float32, device=device)
        self._dct = torch.as_tensor(dct, dtype=torch.float32, device=device)
        self._window = torch.hann_window(self.n_fft, periodic=True, dtype=torch.float32, device=device)
        rows, cols = np.triu_indices(self.n_mfcc)
        self._triu = (torch.as_tensor(rows, device=device), torch.as_tensor(cols, device=device))

    def embed_batch(self, waves: Any, lengths: Any) -> LayerMeans:
        import torch

        if self._device is None:
            raise BackendError("mfcc: load() must run before embed_batch()")
        n_frames = torch.clamp(1 + torch.div(lengths, self.hop_length, rounding_mode="floor"), min=2)
        with torch.autocast(device_type=waves.device.type, enabled=False):
            x = waves.float()
            if x.device.type == "cpu":
                # One clip at a time, cut to its own length: on CPU the batched spectrogram
                # of long clips is memory-bound and about twice as slow per clip.
                keep = torch.clamp(lengths, min=self.hop_length).tolist()
                stats = torch.cat([self._stats(x[i : i + 1, : keep[i]], n_frames[i : i + 1]) for i in range(len(keep))])
            else:
                stats = self._stats(x, n_frames)
        return LayerMeans(means=stats[:, None, :], frames=n_frames)

    def _stats(self, x: Any, n_frames: Any) -> Any:
        """MFCC means + covariance upper triangle of zero-padded clips x [B, T] over their
        first n_frames [B] frames (frames past a clip's end would only see padding)."""
        import torch

        spec = torch.stft(
            x,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self._window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )  # [B, 1 + n_fft/2, F]
        power = spec.real.square() + spec.imag.square()
        mel = torch.matmul(self._mel, power)  # [B, n_mels, F]
        db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
        n_frames = torch.clamp(n_frames, max=db.shape[-1])
        valid = torch.arange(db.shape[-1], device=db.device)[None, :] < n_frames[:, None]  # [B, F]
        peak = torch.where(valid[:, None, :], db, torch.full_like(db, -torch.inf)).amax(dim=(1, 2))
        db = torch.maximum(db, (peak - 80.0)[:, None, None])
        mfcc = torch.matmul(self._dct, db)  # [B, n_mfcc, F]
        w = valid.to(mfcc.dtype)[:, None, :]
        n = n_frames.to(mfcc.dtype)
        mean = (mfcc * w).sum(dim=-1) / n[:, None]
        centred = (mfcc - mean[:, :, None]) * w
        cov = torch.matmul(centred, centred.transpose(1, 2)) / (n - 1)[:, None, None]
        return torch.cat([mean, cov[:, self._triu[0], self._triu[1]]], dim=1)

    # --- reading the dataset's table ---

    def compute(self, dataset_dir: Path, track_ids: Sequence[str]) -> tuple[np.ndarray, dict[str, str]]:
        """Rows of `id_mfcc_stats.tsv[.bz2]` for `track_ids`; ids absent there are reported."""
        if self.source != "dataset":
            raise BackendError("mfcc: compute() reads the dataset's table; this instance computes from audio")
        path = find_stats_file(Path(dataset_dir))
        if self._table is None or self._table[0] != path:
            self._table = (path, read_stats_table(path, self.layer_dims[0]))
        table = self._table[1]
        dim = self.layer_dims[0]
        out = np.zeros((len(track_ids), 1, dim), dtype=np.float32)
        missing: dict[str, str] = {}
        for i, tid in enumerate(track_ids):
            row = table.get(tid)
            if row is None:
                missing[tid] = f"not in {path.name}"
            else:
                out[i, 0] = row
        return out, missing


def find_stats_file(dataset_dir: Path) -> Path:
    plain = dataset_dir / STATS_FILE
    for candidate in (plain, plain.with_name(plain.name + ".bz2")):
        if candidate.exists():
            return candidate
    raise BackendError(
        f"mfcc with `source: dataset`: no {STATS_FILE} or {STATS_FILE}.bz2 in {dataset_dir}. "
        "Copy Music4All-Onion's id_mfcc_stats.tsv.bz2 there, or use `source: audio` to compute MFCCs."
    )


def read_stats_table(path: Path, dim: int) -> dict[str, np.ndarray]:
    """{id: float32 vector} from a tab-separated file with an `id` column and `dim` value columns."""
    import polars as pl

    raw = bz2.decompress(path.read_bytes()) if path.suffix == ".bz2" else path.read_bytes()
    try:
        df = pl.read_csv(io.BytesIO(raw), separator="\t", infer_schema_length=0)
    except Exception as exc:
        raise BackendError(f"mfcc: cannot read {path} as a tab-separated table: {exc}") from None
    if "id" not in df.columns:
        raise BackendError(f"mfcc: {path} has no `id` column (columns: {df.columns[:5]}...).")
    values = [c for c in df.columns if c != "id"]
    if len(values) != dim:
        raise BackendError(
            f"mfcc: {path} has {len(values)} value columns besides `id`; expected {dim} "
            "(13 MFCC means + 91 covariance entries)."
        )
    try:
        matrix = df.select(pl.col(values).cast(pl.Float64)).to_numpy().astype(np.float32)
    except Exception as exc:
        raise BackendError(f"mfcc: {path} has non-numeric values: {exc}") from None
    ids = df["id"].to_list()
    if len(set(ids)) != len(ids):
        raise BackendError(f"mfcc: {path} lists some ids more than once.")
    return {str(t): matrix[i] for i, t in enumerate(ids)}

"""The extraction engine: decoded tracks -> windows -> padded batches -> pooled layer means.

Everything a backend should not repeat lives here: decoding in worker processes,
resampling to the backend's rate, cutting long tracks into windows and pooling their
means weighted by valid frames, padding clips shorter than the backend's minimum,
batching, device placement and mixed precision, and turning every per-track problem
into a recorded `Failure` instead of a crashed job or a NaN row.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..audio.windows import Window, plan_windows
from ..backends.base import Backend, BackendError
from .decoding import DecodePool
from .device import RunPlan, autocast
from .records import EmbedResult, Failure, TrackRef

log = logging.getLogger(__name__)


class TooManyFailures(RuntimeError):
    """More tracks failed than the backend's `max_fail_share` allows; `failures` lists those
    known when it was raised (the caller writes them where the user can read them)."""

    def __init__(self, message: str, failures: Sequence[Failure] = ()) -> None:
        super().__init__(message)
        self.failures = list(failures)


@dataclass
class _Track:
    """Running pooled sum of one track's windows."""

    ref: TrackRef
    windows_left: int
    total: np.ndarray | None = None  # [L, D] float64, sum of frames * means
    frames: float = 0.0
    error: str | None = None
    stage: str = "decode"
    silent: bool = False
    finished: bool = False


@dataclass
class _Item:
    """One window of one track, waiting for a batch."""

    track: _Track
    audio: np.ndarray  # the window's real samples
    padded: int  # length it is zero-padded to


@dataclass
class Extractor:
    """Runs one backend over chunks of tracks; build once per job (loads the model once).

    `max_failures`: the job stops (TooManyFailures) as soon as more tracks than this have
    failed, counting `prior_failures` recorded before (the probe's); None never stops.
    """

    backend: Backend
    plan: RunPlan
    batch_size: int = 8
    dataset_dir: Path | None = None
    max_failures: int | None = None
    prior_failures: int = 0
    on_track: Callable[[], None] | None = None
    decode_pool: DecodePool | None = None
    _failed: int = field(default=0, init=False)
    #: failures of the current run() call, as they happen
    current_failures: list[Failure] = field(default_factory=list, init=False)
    _loaded: bool = field(default=False, init=False)
    _warned_embed_error: bool = field(default=False, init=False)

    # --- lifecycle ---

    def __enter__(self) -> Extractor:
        import torch

        if self.backend.needs_audio and self.decode_pool is None:
            # Fork the decode workers before the model creates its thread pools and CUDA context.
            self.decode_pool = DecodePool(self.plan.num_workers)
        if self.plan.device.type == "cpu":
            torch.set_num_threads(self.plan.torch_threads)
        if self.backend.needs_audio:
            self.backend.load(self.plan.device, self.plan.precision)
        self._loaded = True
        log.info("backend %s ready: %s", self.backend.type_name, self.plan.describe())
        return self

    def __exit__(self, *exc: object) -> None:
        if self.decode_pool is not None:
            self.decode_pool.close()

    # --- public ---

    def run(self, refs: Sequence[TrackRef]) -> EmbedResult:
        """Embed `refs`; rows of the result follow their order, failures left out and listed."""
        if not self._loaded:
            raise RuntimeError("use the Extractor as a context manager (it loads the model once)")
        self.current_failures = []
        self.check_failures()
        if not self.backend.needs_audio:
            return self._run_precomputed(refs)
        return self._run_audio(refs)

    # --- precomputed backends: no audio ---

    def _run_precomputed(self, refs: Sequence[TrackRef]) -> EmbedResult:
        if self.dataset_dir is None:
            raise BackendError(f"backend type {self.backend.type_name} reads dataset files; no dataset folder given")
        ids = [r.track_id for r in refs]
        values, missing = self.backend.compute(self.dataset_dir, ids)  # type: ignore[attr-defined]
        values = np.asarray(values, dtype=np.float32)
        if values.ndim == 2:
            values = values[:, None, :]
        if values.shape[0] != len(ids):
            raise BackendError(
                f"backend type {self.backend.type_name}: compute() returned {values.shape[0]} rows "
                f"for {len(ids)} tracks"
            )
        keep, failures = [], []
        for i, ref in enumerate(refs):
            reason = missing.get(ref.track_id)
            if reason is None and not np.isfinite(values[i]).all():
                reason = "non-finite values in the source"
            if reason is None:
                keep.append(i)
            else:
                failures.append(Failure(ref.track_id, ref.path, reason, "source"))
                self.current_failures.append(failures[-1])
            if self.on_track:
                self.on_track()
        self._count_failures(len(failures))
        return EmbedResult([ids[i] for i in keep], values[keep], failures)

    # --- audio backends ---

    def _run_audio(self, refs: Sequence[TrackRef]) -> EmbedResult:
        assert self.decode_pool is not None
        b = self.backend
        tracks: list[_Track] = []
        queue: list[_Item] = []
        for decoded in self.decode_pool.decode(refs, b.sample_rate):
            track = _Track(decoded.ref, windows_left=0)
            tracks.append(track)
            if decoded.audio is None:
                track.error = decoded.error or "decoding failed"
                self._done(track)
                continue
            track.silent = decoded.silent
            windows = plan_windows(decoded.audio.shape[0], b.sample_rate, b.window_seconds, b.min_seconds)
            if not windows:
                track.error = "no audio samples after decoding"
                self._done(track)
                continue
            track.windows_left = len(windows)
            queue.extend(self._items(track, decoded.audio, windows))
            while len(queue) >= self.batch_size:
                self._run_batch(queue[: self.batch_size])
                del queue[: self.batch_size]
        while queue:
            self._run_batch(queue[: self.batch_size])
            del queue[: self.batch_size]
        return self._collect(tracks)

    @staticmethod
    def _items(track: _Track, audio: np.ndarray, windows: list[Window]) -> list[_Item]:
        return [_Item(track, audio[w.start : w.stop], w.padded) for w in windows]

    def _run_batch(self, items: list[_Item]) -> None:
        items = [it for it in items if it.track.error is None]
        if not items:
            return
        try:
            means, frames = self._forward(items)
        except Exception as exc:  # one bad window (or an OOM on a long batch) must not stop the job
            if len(items) > 1:
                log.debug("batch of %d failed (%s); retrying its windows one at a time", len(items), exc)
                for it in items:
                    self._run_batch([it])
                return
            self._embed_error(items[0], exc)
            return
        for i, it in enumerate(items):
            track = it.track
            if track.error is not None:
                continue
            m = means[i]
            if not np.isfinite(m).all():
                track.error, track.stage = "backend returned non-finite values (NaN/inf)", "embed"
                self._done(track)
                continue
            w = float(frames[i])
            if w > 0:
                contrib = m.astype(np.float64) * w
                track.total = contrib if track.total is None else track.total + contrib
                track.frames += w
            track.windows_left -= 1
            if track.windows_left == 0:
                self._done(track)

    def _forward(self, items: list[_Item]) -> tuple[np.ndarray, np.ndarray]:
        import torch

        lengths = [it.audio.shape[0] for it in items]
        width = max(it.padded for it in items)
        waves = np.zeros((len(items), width), dtype=np.float32)
        for i, it in enumerate(items):
            waves[i, : lengths[i]] = it.audio
        dev = self.plan.device
        x = torch.from_numpy(waves)
        n = torch.tensor(lengths, dtype=torch.long)
        if dev.type == "cuda":
            x, n = x.pin_memory().to(dev, non_blocking=True), n.to(dev)
        with torch.inference_mode(), autocast(dev, self.plan.precision):
            out = self.backend.embed_batch(x, n)
        means = out.means.detach().float().cpu().numpy()
        frames = np.asarray(out.frames.detach().cpu().numpy() if hasattr(out.frames, "detach") else out.frames)
        b = self.backend
        expected = (len(items), len(b.layer_names), max(b.layer_dims))
        if means.shape != expected or frames.shape != (len(items),):
            raise BackendError(
                f"backend type {b.type_name}: embed_batch returned means {means.shape} and frames "
                f"{frames.shape} for a batch of {len(items)}; expected {expected} and ({len(items)},)"
            )
        return means, frames.astype(np.float64)

    def _embed_error(self, item: _Item, exc: Exception) -> None:
        if not self._warned_embed_error:
            # The first one in full: if every track fails like this, it is a bug, not bad audio.
            log.warning("backend raised on %s:\n%s", item.track.ref.path, traceback.format_exc())
            self._warned_embed_error = True
        item.track.error, item.track.stage = f"backend error: {type(exc).__name__}: {exc}", "embed"
        self._done(item.track)

    def _done(self, track: _Track) -> None:
        """A track is finished (embedded or failed): count it once."""
        if track.finished:
            return
        track.finished = True
        if track.error is None and track.frames <= 0:
            track.error, track.stage = "backend reported no valid frames", "embed"
        if track.error is not None:
            self.current_failures.append(Failure(track.ref.track_id, track.ref.path, track.error, track.stage))
            self._count_failures(1)
        if self.on_track:
            self.on_track()

    def _count_failures(self, n: int) -> None:
        self._failed += n
        self.check_failures()

    def check_failures(self) -> None:
        """Raise TooManyFailures once the failures so far exceed `max_failures`."""
        total = self.prior_failures + self._failed
        if self.max_failures is not None and total > self.max_failures:
            raise TooManyFailures(
                f"{total} tracks failed, more than the {self.max_failures} that max_fail_share allows",
                self.current_failures,
            )

    def _collect(self, tracks: list[_Track]) -> EmbedResult:
        ids, rows, failures, silent = [], [], [], []
        for t in tracks:
            if t.error is not None:
                failures.append(Failure(t.ref.track_id, t.ref.path, t.error, t.stage))
                continue
            assert t.total is not None
            ids.append(t.ref.track_id)
            rows.append((t.total / t.frames).astype(np.float32))
            if t.silent:
                silent.append(t.ref.track_id)
        n_layers, dim = len(self.backend.layer_names), max(self.backend.layer_dims)
        layers = np.stack(rows) if rows else np.zeros((0, n_layers, dim), dtype=np.float32)
        return EmbedResult(ids, layers, failures, silent)


def describe_failures(failures: Sequence[Failure], limit: int = 5) -> str:
    """A few failures for a log line."""
    shown = "; ".join(f"{f.track_id}: {f.reason}" for f in failures[:limit])
    more = f" (+{len(failures) - limit} more)" if len(failures) > limit else ""
    return shown + more

"""Decoding tracks in parallel worker processes, in order, with bounded read-ahead.

Decoding (mp3 especially) costs about as much CPU as a small model, so it runs in a pool
while the main process embeds. Results come back in input order, at most `prefetch`
tracks ahead, so memory stays bounded on 100k-track datasets. A worker that dies inside a
native decoder (a segfault on a pathological file) does not stop the job: the pool is
rebuilt, the tracks it held are retried one at a time, and the one that kills a worker
again is recorded as a failure.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from ..audio.decode import AudioError, decode
from .records import TrackRef

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decoded:
    """A decoded track (`audio` set) or the reason it failed (`error` set)."""

    ref: TrackRef
    audio: np.ndarray | None = None
    error: str | None = None

    @property
    def silent(self) -> bool:
        return self.audio is not None and not np.any(self.audio)


def decode_ref(ref: TrackRef, sample_rate: int) -> Decoded:
    """Decode one track; every failure becomes a `Decoded` with its reason."""
    try:
        return Decoded(ref, audio=decode(ref.path, sample_rate, ref.frames))
    except AudioError as exc:
        return Decoded(ref, error=exc.reason)
    except MemoryError:
        return Decoded(ref, error="out of memory while decoding")
    except Exception as exc:  # a decoder bug on one file must not stop the job
        return Decoded(ref, error=f"decoder error: {type(exc).__name__}: {exc}")


def _init_worker() -> None:
    # Decoding is single-threaded C code; keep BLAS/OpenMP pools in workers from competing
    # with the model's threads in the main process.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"


class DecodePool:
    """Ordered parallel decoding; `num_workers=0` decodes in the calling process."""

    def __init__(
        self,
        num_workers: int,
        prefetch: int | None = None,
        decode_fn: Callable[[TrackRef, int], Decoded] = decode_ref,
    ) -> None:
        self.num_workers = max(0, int(num_workers))
        self.prefetch = prefetch or max(4, 4 * self.num_workers)
        self.decode_fn = decode_fn
        self._executor: ProcessPoolExecutor | None = None
        if self.num_workers:
            self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        # fork: the workers need no re-import of the (Snakemake-generated) main script, and
        # the pool is created before the model's thread pools exist.
        return ProcessPoolExecutor(self.num_workers, mp_context=mp.get_context("fork"), initializer=_init_worker)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> DecodePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def decode(self, refs: Iterable[TrackRef], sample_rate: int) -> Iterator[Decoded]:
        """Decoded tracks in the order of `refs`."""
        if self._executor is None:
            for ref in refs:
                yield self.decode_fn(ref, sample_rate)
            return
        pending: deque[tuple[TrackRef, Future[Decoded]]] = deque()
        it = iter(refs)
        exhausted = False
        while True:
            while not exhausted and len(pending) < self.prefetch:
                try:
                    ref = next(it)
                except StopIteration:
                    exhausted = True
                    break
                pending.append((ref, self._submit(ref, sample_rate)))
            if not pending:
                return
            ref, fut = pending.popleft()
            try:
                yield fut.result()
            except BrokenProcessPool:
                held = [(ref, fut), *pending]
                pending.clear()
                yield from self._recover(held, sample_rate)

    def _submit(self, ref: TrackRef, sample_rate: int) -> Future[Decoded]:
        assert self._executor is not None
        return self._executor.submit(self.decode_fn, ref, sample_rate)

    def _recover(self, held: list[tuple[TrackRef, Future[Decoded]]], sample_rate: int) -> Iterator[Decoded]:
        """After a worker died: keep what finished, retry the rest one at a time in a new pool."""
        log.warning("a decode worker died; retrying up to %d pending tracks one at a time", len(held))
        self._restart()
        for ref, fut in held:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                yield fut.result()
                continue
            try:
                result = self._submit(ref, sample_rate).result()
            except BrokenProcessPool:
                log.warning("decoding %s kills the worker process; recorded as a failure", ref.path)
                self._restart()
                result = Decoded(ref, error="decoder crashed (the worker process died)")
            yield result

    def _restart(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._new_executor()

"""Cutting a track into the windows a backend can take in one forward pass.

A backend declares `window_seconds` (longest input) and `min_seconds` (shortest). A track
longer than a window is cut into consecutive, non-overlapping windows; the engine then
pools their per-window layer means weighted by valid frames, which is what one pass over
the whole track would give for a frame-wise model. A trailing remainder shorter than
`min_seconds` is dropped when the track has at least one full window (the same choice
the original musicnn makes for its patches: padding it would mostly embed zeros); a track
that is shorter than `min_seconds` altogether is zero-padded up to it instead, so short
clips still get a vector.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    start: int  # first sample
    stop: int  # one past the last real sample
    padded: int  # length the window is zero-padded to (>= stop - start)

    @property
    def length(self) -> int:
        return self.stop - self.start


def plan_windows(
    n_samples: int, sample_rate: int, window_seconds: float | None, min_seconds: float = 0.0
) -> list[Window]:
    """Windows covering a clip of `n_samples` at `sample_rate` (see the module docstring)."""
    if n_samples <= 0:
        return []
    min_len = max(1, math.ceil(min_seconds * sample_rate)) if min_seconds > 0 else 1
    if window_seconds is None or window_seconds <= 0:
        return [Window(0, n_samples, max(n_samples, min_len))]
    win = max(1, round(window_seconds * sample_rate))
    if win < min_len:
        raise ValueError(f"window ({window_seconds} s) is shorter than the minimum clip ({min_seconds} s)")
    if n_samples <= win:
        return [Window(0, n_samples, max(n_samples, min_len))]
    windows = []
    for start in range(0, n_samples, win):
        stop = min(start + win, n_samples)
        if stop - start < min_len:
            break  # only the trailing remainder can be short, and there is a full window before it
        windows.append(Window(start, stop, stop - start))
    return windows

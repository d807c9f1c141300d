"""Plain records passed between the engine, the shard runner and the gather step."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: columns of `{backend}.failures.csv`, in order
FAILURE_COLUMNS: tuple[str, ...] = ("track_id", "path", "reason", "stage")


@dataclass(frozen=True)
class TrackRef:
    """One track to embed: where its audio is and how many frames its header announced."""

    track_id: str
    path: str
    frames: int | None = None


@dataclass(frozen=True)
class Failure:
    """A track without a vector, and why.

    stage: `probe` (rule tracks found the file missing, empty or unreadable), `decode`
    (the audio could not be decoded in full), `embed` (the backend raised or returned
    non-finite values), `source` (a precomputed backend has no vector for it).
    """

    track_id: str
    path: str
    reason: str
    stage: str

    def as_row(self) -> dict[str, str]:
        return {"track_id": self.track_id, "path": self.path, "reason": self.reason, "stage": self.stage}


@dataclass
class EmbedResult:
    """Per-layer means of the tracks that could be embedded (in input order), plus the rest."""

    track_ids: list[str]
    layers: np.ndarray  # [n, L, Dmax] float32
    failures: list[Failure] = field(default_factory=list)
    silent: list[str] = field(default_factory=list)  # embedded, but all-zero audio

"""Just enough music theory to write believable parts: modes, diatonic chords, voice leading.

Everything is in MIDI note numbers (60 = middle C) so that parts can be transposed and
compared with plain integer arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: semitone steps of each mode from its tonic
MODES: dict[str, tuple[int, ...]] = {
    "ionian": (0, 2, 4, 5, 7, 9, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "aeolian": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
}

PITCH_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def midi_to_hz(midi: float | np.ndarray) -> float | np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def is_major(mode: str) -> bool:
    """Whether the mode's third is major (decides which pentatonic a melody uses)."""
    return MODES[mode][2] == 4


class Scale:
    """A key (tonic pitch class) and a mode, addressed by scale degree across octaves."""

    def __init__(self, tonic_pc: int, mode: str) -> None:
        self.tonic_pc = int(tonic_pc) % 12
        self.mode = mode
        self.steps = MODES[mode]

    def degree_to_midi(self, degree: int, octave_base: int) -> int:
        """MIDI note of a (possibly negative or >6) scale degree; degree 0 sits at or above octave_base."""
        octave, step = divmod(int(degree), 7)
        root = octave_base + ((self.tonic_pc - octave_base) % 12)
        return root + 12 * octave + self.steps[step]

    def degrees_in_range(self, lo: int, hi: int, allowed: Sequence[int] | None = None) -> np.ndarray:
        """All MIDI notes in [lo, hi] that belong to the scale (optionally only some degrees)."""
        allowed_pcs = {(self.tonic_pc + self.steps[d % 7]) % 12 for d in (allowed if allowed is not None else range(7))}
        notes = [n for n in range(lo, hi + 1) if n % 12 in allowed_pcs]
        return np.asarray(notes, dtype=np.int64)

    def pentatonic_degrees(self) -> tuple[int, ...]:
        """Major pentatonic (1 2 3 5 6) or minor pentatonic (1 b3 4 5 b7) of the mode."""
        return (0, 1, 2, 4, 5) if is_major(self.mode) else (0, 2, 3, 4, 6)

    def chord(self, degree: int, size: int = 3, kind: str = "tertian") -> list[int]:
        """Pitch classes (relative to C) of the chord on a scale degree.

        tertian: stacked thirds within the mode (triad, seventh, ninth);
        power: root and perfect fifth (the rock/metal "5" chord);
        sus: root, fourth, fifth.
        """
        root = (self.tonic_pc + self.steps[degree % 7]) % 12
        if kind == "power":
            return [root, (root + 7) % 12]
        if kind == "sus":
            return [root, (root + 5) % 12, (root + 7) % 12]
        pcs = []
        for i in range(size):
            d = degree + 2 * i
            pcs.append((self.tonic_pc + self.steps[d % 7]) % 12)
        return pcs

    def root_midi(self, degree: int, lo: int) -> int:
        """The chord root of a degree as the lowest MIDI note >= lo."""
        pc = (self.tonic_pc + self.steps[degree % 7]) % 12
        return lo + ((pc - lo) % 12)


def voice_chord(pcs: Sequence[int], centre: int, previous: Sequence[int] | None = None) -> list[int]:
    """Place pitch classes as a close voicing near `centre`, moving as little as possible from `previous`.

    Smooth voice leading is what makes a loop of chords sound like a progression rather
    than a series of jumps; choosing the inversion with the least total movement is the
    textbook rule and costs nothing here.
    """
    candidates = []
    n = len(pcs)
    for inversion in range(n):
        order = list(pcs[inversion:]) + list(pcs[:inversion])
        for base in range(centre - 12, centre + 1):
            if base % 12 != order[0]:
                continue
            notes = [base]
            for pc in order[1:]:
                nxt = notes[-1] + ((pc - notes[-1]) % 12 or 12)
                notes.append(nxt)
            candidates.append(notes)
    if not candidates:  # cannot happen for non-empty pcs; kept for type safety
        return [centre]

    def cost(notes: list[int]) -> float:
        # distance of the voicing's middle from the centre keeps a looping progression from drifting
        drift = abs((notes[0] + notes[-1]) / 2.0 - centre)
        if not previous:
            return drift
        if len(previous) == len(notes):  # voice by voice, lowest to highest
            movement = sum(abs(a - b) for a, b in zip(sorted(notes), sorted(previous), strict=True))
        else:
            movement = sum(min(abs(a - b) for b in previous) for a in notes)
        return movement + 0.25 * drift

    return min(candidates, key=cost)


def nearest_in(notes: np.ndarray, target: float) -> int:
    """The element of a sorted note array closest to target."""
    i = int(np.argmin(np.abs(notes - target)))
    return int(notes[i])

"""Music theory helpers against hand-worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from audiorec.data.synthetic.music import MODES, Scale, is_major, midi_to_hz, voice_chord


def test_midi_to_hz_reference_pitches() -> None:
    assert midi_to_hz(69) == pytest.approx(440.0)
    assert midi_to_hz(60) == pytest.approx(261.6256, abs=1e-3)
    assert midi_to_hz(81) == pytest.approx(880.0)


def test_modes_are_rotations_of_the_major_scale() -> None:
    ionian = MODES["ionian"]
    for start, name in enumerate(("ionian", "dorian", "phrygian", "lydian", "mixolydian", "aeolian")):
        rotated = tuple((ionian[(start + i) % 7] - ionian[start]) % 12 for i in range(7))
        assert MODES[name] == rotated, name


def test_diatonic_triads_in_c_major() -> None:
    c = Scale(0, "ionian")
    assert c.chord(0) == [0, 4, 7]  # C E G
    assert c.chord(4) == [7, 11, 2]  # G B D
    assert c.chord(5) == [9, 0, 4]  # A C E (vi)
    assert c.chord(4, size=4) == [7, 11, 2, 5]  # G7
    assert c.chord(1, kind="power") == [2, 9]  # D5


def test_degree_to_midi_and_pentatonics() -> None:
    a_minor = Scale(9, "aeolian")
    assert a_minor.degree_to_midi(0, 57) == 57  # A3
    assert a_minor.degree_to_midi(2, 57) == 60  # C4
    assert a_minor.degree_to_midi(7, 57) == 69  # A4
    assert a_minor.degree_to_midi(-1, 57) == 55  # G3
    assert not is_major("aeolian") and is_major("mixolydian")
    assert a_minor.pentatonic_degrees() == (0, 2, 3, 4, 6)  # A C D E G
    notes = a_minor.degrees_in_range(57, 69, a_minor.pentatonic_degrees())
    assert list(notes % 12) == [9, 0, 2, 4, 7, 9]


def test_voice_leading_moves_as_little_as_possible() -> None:
    c_major = voice_chord([0, 4, 7], 60)
    assert sorted(n % 12 for n in c_major) == [0, 4, 7]
    assert max(c_major) - min(c_major) < 12  # close voicing
    # C (C E G) -> F: the smooth way keeps C and moves E->F, G->A: C F A (second inversion)
    f_major = voice_chord([5, 9, 0], 60, previous=[60, 64, 67])
    assert sorted(f_major) == [60, 65, 69]
    # and back to C returns to the starting voicing
    assert sorted(voice_chord([0, 4, 7], 60, previous=f_major)) == [60, 64, 67]


def test_root_midi_is_the_lowest_at_or_above_the_floor() -> None:
    g = Scale(7, "mixolydian")
    roots = [g.root_midi(d, 33) for d in range(7)]
    assert all(33 <= r < 45 for r in roots)
    assert roots[0] % 12 == 7 and roots[6] % 12 == 5  # G and F (the mixolydian bVII)
    assert np.all(np.asarray(roots) % 12 == np.asarray([(7 + s) % 12 for s in MODES["mixolydian"]]))

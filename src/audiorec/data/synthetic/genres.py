"""The genres of the synthetic catalogue: the latent musical attributes each one draws from.

A genre fixes the ranges a track's attributes are drawn from (tempo, rhythmic density,
melodic register, brightness, energy, swing, meter, mode) and the ways its parts are
played (instrument palettes, chord progressions, comping, bass and drum patterns,
reverb). Tracks vary inside these ranges around their artist's signature, so tracks of
a genre share a family resemblance without being copies, and genres differ in many
audible ways at once, as real ones do.
"""

from __future__ import annotations

from dataclasses import dataclass

#: drum pattern: voice -> one bar of steps (16 for 4/4, 12 for 3/4); x hit, o accent, g ghost, . rest
DrumPattern = dict[str, str]


@dataclass(frozen=True)
class Genre:
    name: str
    #: relative share of artists (and prior weight of the genre in listeners' tastes)
    prevalence: float
    tempo: tuple[float, float]  # bpm range
    meters: dict[int, float]  # beats per bar -> weight
    swing: tuple[float, float]  # delay of swung off-beats, as a fraction of the swung note's length
    swing_unit: int  # 8: eighth-note swing (jazz), 16: sixteenth swing (hip-hop)
    density: tuple[float, float]  # mean, sd of melody onsets per beat
    register: tuple[float, float]  # range of the melody's centre (MIDI)
    brightness: tuple[float, float]  # mean, sd in [0, 1]
    energy: tuple[float, float]  # mean, sd in [0, 1]
    modes: dict[str, float]
    progressions: tuple[tuple[int, ...], ...]  # scale degrees, one chord per `bars_per_chord`
    chord_kind: str  # tertian | power | sus
    chord_size: int  # 3 triads, 4 sevenths
    bars_per_chord: int  # bars each chord of the progression lasts
    leads: tuple[str, ...]
    comps: tuple[str, ...]
    basses: tuple[str, ...]
    melody_style: str  # vocal | riff | arp | sparse | lyrical | bebop
    comp_style: str  # eighths | chug | pulse | strum | stabs | held | comp | pad | skank | arpeggio
    bass_style: str  # root8 | chug | root_pulse | offbeat | 808 | walking | pedal | root_fifth | reggae
    drum_patterns: tuple[DrumPattern, ...]  # empty: no drums
    reverb: tuple[float, float]  # wet share range
    room: tuple[float, float]  # reverb decay (s) range
    drive: float  # distortion of the comping part
    sidechain: float  # depth of the kick ducking bass and chords (house pumping)
    pentatonic: bool  # melody restricted to the pentatonic of the mode
    comp_register: int  # centre of chord voicings (MIDI)
    bass_register: int  # lowest bass root (MIDI)
    mix: tuple[float, float, float, float]  # lead, comp, bass, drums gains
    crash_on_phrase: bool = False
    fills: bool = False


GENRES: dict[str, Genre] = {
    g.name: g
    for g in (
        Genre(
            name="rock", prevalence=1.4, tempo=(100, 140), meters={4: 1.0}, swing=(0.0, 0.02), swing_unit=16,
            density=(1.4, 0.3), register=(62, 70), brightness=(0.6, 0.07), energy=(0.72, 0.07),
            modes={"ionian": 0.35, "mixolydian": 0.35, "aeolian": 0.3},
            progressions=((0, 6, 3, 0), (0, 3, 4, 3), (0, 4, 5, 3), (5, 3, 0, 4)),
            chord_kind="power", chord_size=3, bars_per_chord=1,
            leads=("overdrive_lead", "organ", "voice"), comps=("dist_guitar",), basses=("electric_bass",),
            melody_style="riff", comp_style="eighths", bass_style="root8",
            drum_patterns=(
                {"kick": "x.......x.x.....", "snare": "....x.......x...", "chh": "x.x.x.x.x.x.x.x."},
                {"kick": "x.....x.x.......", "snare": "....x.......x..g", "chh": "x.x.x.x.x.x.x.x."},
                {"kick": "x.......x.......", "snare": "....x.......x...", "ride": "x.x.x.x.x.x.x.x."},
            ),
            reverb=(0.1, 0.2), room=(0.8, 1.4), drive=5.0, sidechain=0.0, pentatonic=True,
            comp_register=47, bass_register=33, mix=(0.8, 1.0, 0.9, 1.0), crash_on_phrase=True, fills=True,
        ),
        Genre(
            name="metal", prevalence=0.8, tempo=(150, 195), meters={4: 1.0}, swing=(0.0, 0.0), swing_unit=16,
            density=(1.2, 0.3), register=(55, 64), brightness=(0.82, 0.06), energy=(0.93, 0.04),
            modes={"phrygian": 0.4, "aeolian": 0.45, "harmonic_minor": 0.15},
            progressions=((0, 1, 0, 5), (0, 5, 6, 0), (0, 0, 5, 6), (0, 3, 1, 0)),
            chord_kind="power", chord_size=3, bars_per_chord=1,
            leads=("overdrive_lead",), comps=("dist_guitar",), basses=("electric_bass",),
            melody_style="sparse", comp_style="chug", bass_style="chug",
            drum_patterns=(
                {"kick": "xxxxxxxxxxxxxxxx", "snare": "....x.......x...", "ride": "x...x...x...x..."},
                {"kick": "x.x.x.x.x.x.x.x.", "snare": "..x...x...x...x.", "chh": "xxxxxxxxxxxxxxxx"},
                {"kick": "xx.xxx.xxx.xxx.x", "snare": "....x.......x...", "crash": "x.......x......."},
            ),
            reverb=(0.06, 0.14), room=(0.6, 1.0), drive=14.0, sidechain=0.0, pentatonic=False,
            comp_register=40, bass_register=28, mix=(0.6, 1.1, 0.8, 1.0), crash_on_phrase=True, fills=True,
        ),
        Genre(
            name="pop", prevalence=1.6, tempo=(96, 124), meters={4: 1.0}, swing=(0.0, 0.03), swing_unit=16,
            density=(1.6, 0.35), register=(64, 72), brightness=(0.66, 0.06), energy=(0.62, 0.07),
            modes={"ionian": 0.75, "mixolydian": 0.1, "aeolian": 0.15},
            progressions=((0, 4, 5, 3), (5, 3, 0, 4), (0, 5, 3, 4), (0, 3, 5, 4)),
            chord_kind="tertian", chord_size=3, bars_per_chord=1,
            leads=("voice",), comps=("piano", "bright_synth"), basses=("synth_bass", "electric_bass"),
            melody_style="vocal", comp_style="pulse", bass_style="root_pulse",
            drum_patterns=(
                {"kick": "x.....x.x.......", "clap": "....x.......x...", "chh": "x.x.x.x.x.x.x.x."},
                {"kick": "x...x...x...x...", "clap": "....x.......x...", "chh": "..x...x...x...x."},
                {"kick": "x.......x.x.....", "snare": "....x.......x...", "shaker": "xxxxxxxxxxxxxxxx"},
            ),
            reverb=(0.18, 0.28), room=(1.0, 1.6), drive=0.0, sidechain=0.0, pentatonic=False,
            comp_register=62, bass_register=36, mix=(1.0, 0.7, 0.9, 0.85), crash_on_phrase=True,
        ),
        Genre(
            name="electronic", prevalence=1.2, tempo=(120, 130), meters={4: 1.0}, swing=(0.0, 0.0), swing_unit=16,
            density=(2.6, 0.5), register=(69, 79), brightness=(0.74, 0.06), energy=(0.8, 0.05),
            modes={"aeolian": 0.6, "dorian": 0.3, "phrygian": 0.1},
            progressions=((0, 5, 2, 6), (0, 5, 6, 4), (0, 3, 5, 6), (0, 6, 5, 6)),
            chord_kind="tertian", chord_size=3, bars_per_chord=1,
            leads=("pluck_synth", "square_lead"), comps=("supersaw",), basses=("saw_bass",),
            melody_style="arp", comp_style="stabs", bass_style="offbeat",
            drum_patterns=(
                {"kick": "x...x...x...x...", "clap": "....x.......x...", "ohh": "..x...x...x...x.",
                 "chh": "gggggggggggggggg"},
                {"kick": "x...x...x...x...", "clap": "....x.......x...", "chh": "..x...x...x...x.",
                 "shaker": "gxggxgggxggggxgg"},
            ),
            reverb=(0.15, 0.25), room=(1.2, 2.0), drive=0.0, sidechain=0.75, pentatonic=False,
            comp_register=62, bass_register=36, mix=(0.7, 0.8, 0.9, 1.1), crash_on_phrase=True,
        ),
        Genre(
            name="hiphop", prevalence=1.2, tempo=(80, 96), meters={4: 1.0}, swing=(0.08, 0.2), swing_unit=16,
            density=(0.9, 0.25), register=(60, 70), brightness=(0.32, 0.06), energy=(0.56, 0.07),
            modes={"dorian": 0.5, "aeolian": 0.4, "phrygian": 0.1},
            progressions=((0, 3), (0, 5), (1, 4, 0, 0), (0, 6, 5, 6)),
            chord_kind="tertian", chord_size=4, bars_per_chord=1,
            leads=("flute", "epiano", "whistle"), comps=("epiano",), basses=("sub808",),
            melody_style="sparse", comp_style="held", bass_style="808",
            drum_patterns=(
                {"kick808": "x.........x.....", "snare": "....x.......x...", "chh": "x.x.x.x.x.x.x.x."},
                {"kick": "x......x..x.....", "snare": "....x.......x...", "chh": "x.xxx.x.x.xxx.x."},
                {"kick808": "x..x......x.....", "clap": "....x.......x...", "chh": "xxxxxxxxxxxxxxxx"},
            ),
            reverb=(0.04, 0.1), room=(0.5, 0.9), drive=0.0, sidechain=0.0, pentatonic=True,
            comp_register=60, bass_register=33, mix=(0.6, 0.7, 1.0, 1.1),
        ),
        Genre(
            name="jazz", prevalence=0.7, tempo=(120, 200), meters={4: 1.0}, swing=(0.28, 0.34), swing_unit=8,
            density=(2.2, 0.35), register=(62, 72), brightness=(0.45, 0.06), energy=(0.4, 0.06),
            modes={"dorian": 0.5, "mixolydian": 0.25, "ionian": 0.25},
            progressions=((1, 4, 0, 0), (0, 5, 1, 4), (1, 4, 0, 5), (2, 5, 1, 4)),
            chord_kind="tertian", chord_size=4, bars_per_chord=1,
            leads=("sax", "brass"), comps=("piano",), basses=("upright_bass",),
            melody_style="bebop", comp_style="comp", bass_style="walking",
            drum_patterns=(
                {"ride": "x...x.x.x...x.x.", "chh": "....x.......x...", "kick": "g...g...g...g..."},
                {"ride": "x...x.x.x...x.x.", "chh": "....x.......x...", "snare": "......g.......g."},
            ),
            reverb=(0.15, 0.25), room=(1.0, 1.6), drive=0.0, sidechain=0.0, pentatonic=False,
            comp_register=62, bass_register=31, mix=(0.9, 0.7, 1.0, 0.7),
        ),
        Genre(
            name="classical", prevalence=0.7, tempo=(60, 100), meters={4: 0.5, 3: 0.5}, swing=(0.0, 0.0), swing_unit=16,
            density=(1.4, 0.35), register=(67, 79), brightness=(0.42, 0.06), energy=(0.3, 0.06),
            modes={"ionian": 0.55, "aeolian": 0.15, "harmonic_minor": 0.3},
            progressions=((0, 3, 4, 0), (0, 5, 3, 4), (0, 4, 5, 2, 3, 0, 3, 4), (0, 1, 4, 0)),
            chord_kind="tertian", chord_size=3, bars_per_chord=1,
            leads=("violin", "flute"), comps=("strings", "harp"), basses=("cello",),
            melody_style="lyrical", comp_style="pad", bass_style="pedal",
            drum_patterns=(),
            reverb=(0.35, 0.5), room=(1.8, 2.6), drive=0.0, sidechain=0.0, pentatonic=False,
            comp_register=60, bass_register=36, mix=(1.0, 0.8, 0.7, 0.0),
        ),
        Genre(
            name="ambient", prevalence=0.6, tempo=(50, 80), meters={4: 1.0}, swing=(0.0, 0.0), swing_unit=16,
            density=(0.35, 0.1), register=(67, 84), brightness=(0.25, 0.06), energy=(0.2, 0.05),
            modes={"lydian": 0.45, "ionian": 0.3, "dorian": 0.25},
            progressions=((0, 1), (0, 4, 3), (0, 5, 3, 4), (0, 3)),
            chord_kind="tertian", chord_size=4, bars_per_chord=2,
            leads=("bell", "glass"), comps=("warm_pad",), basses=("sub_sine",),
            melody_style="sparse", comp_style="pad", bass_style="pedal",
            drum_patterns=(),
            reverb=(0.5, 0.65), room=(3.0, 4.5), drive=0.0, sidechain=0.0, pentatonic=True,
            comp_register=60, bass_register=31, mix=(0.8, 1.0, 0.6, 0.0),
        ),
        Genre(
            name="folk", prevalence=0.8, tempo=(84, 128), meters={4: 0.6, 3: 0.4}, swing=(0.0, 0.06), swing_unit=8,
            density=(1.3, 0.3), register=(62, 72), brightness=(0.5, 0.06), energy=(0.45, 0.06),
            modes={"ionian": 0.6, "mixolydian": 0.3, "dorian": 0.1},
            progressions=((0, 3, 0, 4), (0, 4, 5, 3), (0, 6, 3, 0), (0, 3, 4, 0)),
            chord_kind="tertian", chord_size=3, bars_per_chord=1,
            leads=("fiddle", "whistle", "voice"), comps=("acoustic_guitar",), basses=("upright_bass",),
            melody_style="lyrical", comp_style="strum", bass_style="root_fifth",
            drum_patterns=(
                {"kick": "x.......x.......", "rim": "....x.......x...", "shaker": "xgxgxgxgxgxgxgxg"},
                {"kick": "x.......x.......", "shaker": "x.x.x.x.x.x.x.x."},
            ),
            reverb=(0.15, 0.25), room=(0.9, 1.4), drive=0.0, sidechain=0.0, pentatonic=True,
            comp_register=55, bass_register=36, mix=(0.9, 1.0, 0.7, 0.6),
        ),
        Genre(
            name="reggae", prevalence=0.6, tempo=(66, 86), meters={4: 1.0}, swing=(0.05, 0.12), swing_unit=16,
            density=(1.0, 0.25), register=(60, 70), brightness=(0.4, 0.06), energy=(0.5, 0.06),
            modes={"ionian": 0.4, "dorian": 0.35, "aeolian": 0.25},
            progressions=((0, 3), (0, 4, 3, 4), (5, 4), (0, 5, 3, 4)),
            chord_kind="tertian", chord_size=3, bars_per_chord=1,
            leads=("organ", "square_lead", "voice"), comps=("clean_guitar",), basses=("dub_bass",),
            melody_style="vocal", comp_style="skank", bass_style="reggae",
            drum_patterns=(
                {"kick": "........x.......", "rim": "........x.......", "chh": "x.x.x.x.x.x.x.x."},
                {"kick": "x.......x.......", "snare": "........x.......", "chh": "x.x.x.x.x.x.x.x."},
            ),
            reverb=(0.15, 0.25), room=(1.0, 1.6), drive=0.0, sidechain=0.0, pentatonic=False,
            comp_register=62, bass_register=33, mix=(0.8, 0.8, 1.2, 0.9),
        ),
    )
}

GENRE_NAMES: tuple[str, ...] = tuple(GENRES)

#: numeric attributes written to id_genres.tsv and over which users' within-genre preferences act
TASTE_ATTRIBUTES: tuple[str, ...] = ("tempo", "density", "register", "brightness", "energy")

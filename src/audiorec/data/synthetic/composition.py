"""Writing a track's parts from its plan: chords, bass line, melody and drums on a metric grid.

The score is built the way simple songs are: a chord progression looping over bars, a
bass line and a comping part that follow it in the genre's idiom, a melody made of
one-bar motifs that recur (AABA-like phrases) and land on chord tones on strong beats,
and a drum pattern with ghost notes, fills and crashes at phrase starts. Rhythms live on
a sixteenth-note grid with the genre's swing, so "rhythmic density" and "tempo" mean
what a listener would count.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .genres import GENRES, Genre
from .music import Scale, nearest_in, voice_chord

#: (onset seconds, duration seconds, MIDI note, velocity 0..1)
Note = tuple[float, float, int, float]
#: (onset seconds, drum voice, velocity)
Hit = tuple[float, str, float]


@dataclass(frozen=True)
class TrackPlan:
    """Everything needed to render one track: its latent attributes and arrangement choices.

    Attribute values are those written to id_genres.tsv; the arrangement choices (which
    instrument from the genre's palette, which progression and drum pattern) mostly come
    from the track's artist, which is what makes an artist's tracks sound related.
    """

    track_id: str
    index: int
    genre: str
    tempo: float
    meter: int
    swing: float
    density: float
    register: float
    brightness: float
    energy: float
    key: int
    mode: str
    progression: int
    lead: str
    comp: str
    bass: str
    drums: int
    reverb: float
    room: float


@dataclass
class Score:
    parts: dict[str, list[Note]] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    kick_times: list[float] = field(default_factory=list)
    bar_seconds: float = 0.0


class Grid:
    """Times of sixteenth-note steps, with swing applied to the off-beats of the swing unit."""

    def __init__(self, tempo: float, meter: int, swing: float, swing_unit: int) -> None:
        self.beat = 60.0 / tempo
        self.meter = meter
        self.steps_per_bar = 4 * meter
        self.swing = swing
        self.swing_unit = swing_unit

    @property
    def bar(self) -> float:
        return self.beat * self.meter

    @property
    def step(self) -> float:
        return self.beat / 4.0

    def time(self, bar: int, step: float) -> float:
        beat, sub = divmod(step, 4)
        offset = sub / 4.0
        if self.swing_unit == 8 and 2 <= sub < 4:
            offset += self.swing * 0.5 * (1.0 if sub == 2 else 0.5)
        elif self.swing_unit == 16 and int(sub) % 2 == 1:
            offset += self.swing * 0.25
        return (bar * self.meter + beat + offset) * self.beat


def _metric_weight(step: int) -> float:
    if step == 0:
        return 1.3
    if step % 4 == 0:
        return 1.0
    if step % 2 == 0:
        return 0.55
    return 0.25


def _pattern_for_meter(voice: str, pattern: str, meter: int) -> str:
    """A 4/4 drum pattern adapted to 3/4 (kick on one, backbeat on two and three)."""
    if len(pattern) == 4 * meter:
        return pattern
    if meter == 3:
        if voice in ("kick", "kick808"):
            return "x..........."
        if voice in ("snare", "clap", "rim"):
            return "....x...x..."
        return pattern[:12]
    return (pattern * 2)[: 4 * meter]


def _velocity(ch: str) -> float:
    return {"x": 0.8, "o": 1.0, "g": 0.32}.get(ch, 0.0)


class Composer:
    def __init__(self, plan: TrackPlan, seconds: float, rng: np.random.Generator) -> None:
        self.plan = plan
        self.genre: Genre = GENRES[plan.genre]
        self.rng = rng
        self.grid = Grid(plan.tempo, plan.meter, plan.swing, self.genre.swing_unit)
        self.scale = Scale(plan.key, plan.mode)
        self.n_bars = int(np.ceil(seconds / self.grid.bar)) + 2
        prog = self.genre.progressions[plan.progression % len(self.genre.progressions)]
        bpc = self.genre.bars_per_chord
        self.degrees = [prog[(b // bpc) % len(prog)] for b in range(self.n_bars)]

    # --- helpers ---

    def chord_pcs(self, bar: int) -> list[int]:
        return self.scale.chord(self.degrees[bar], self.genre.chord_size, self.genre.chord_kind)

    def root(self, bar: int) -> int:
        return self.scale.root_midi(self.degrees[bar], self.genre.bass_register)

    def t(self, bar: int, step: float) -> float:
        jitter = 0.0 if self.plan.genre == "electronic" else float(self.rng.normal(0.0, 0.004))
        return max(0.0, self.grid.time(bar, step) + jitter)

    def vel(self, base: float, step: int) -> float:
        accent = 1.0 + 0.12 * (step % 4 == 0) + 0.08 * (step == 0)
        v = base * accent * (0.75 + 0.35 * self.plan.energy) + float(self.rng.normal(0.0, 0.04))
        return float(np.clip(round(v * 20) / 20, 0.05, 1.2))

    # --- the score ---

    def compose(self) -> Score:
        score = Score(bar_seconds=self.grid.bar)
        score.parts["comp"] = self.comp()
        score.parts["bass"] = self.bass(score)
        score.parts["lead"] = self.melody()
        score.hits, score.kick_times = self.drums()
        if self.genre.bass_style == "808":
            score.parts["bass"] = self.bass_808(score.kick_times)
        return score

    # --- chords ---

    def comp(self) -> list[Note]:
        g, grid, plan = self.genre, self.grid, self.plan
        style = "arpeggio" if plan.comp == "harp" else g.comp_style
        notes: list[Note] = []
        previous: list[int] | None = None
        S = grid.steps_per_bar
        chug_choices = ("xxxxxxxxxxxxxxxx", "xx.xxx.xxx.xxx.x", "x.xxx.xxx.xxx.xx", "xxx.xxx.xx.xxx.x")
        chug = chug_choices[int(self.rng.integers(len(chug_choices)))][:S]
        for bar in range(self.n_bars):
            pcs = self.chord_pcs(bar)
            if g.chord_kind == "power":
                root = g.comp_register + ((pcs[0] - g.comp_register) % 12)
                voicing = [root, root + 7, root + 12]
            elif style == "comp":  # rootless jazz voicing: 3rd, 5th, 7th, 9th
                pcs9 = self.scale.chord(self.degrees[bar], 5)[1:]
                voicing = voice_chord(pcs9, g.comp_register, previous)
            else:
                voicing = voice_chord(pcs, g.comp_register, previous)
            previous = voicing

            def hit(step: float, dur_steps: float, base: float, chord: list[int] = voicing, spread: float = 0.0) -> None:
                onset = self.t(bar, step)
                for i, m in enumerate(chord):
                    notes.append((onset + i * spread, dur_steps * grid.step, m, self.vel(base, int(step))))

            if style == "eighths":
                for step in range(0, S, 2):
                    if step == S - 2 and self.rng.random() < 0.25:
                        continue
                    hit(step, 1.7, 0.75)
            elif style == "chug":
                for step, ch in enumerate(chug):
                    if ch == "x":
                        hit(step, 4.0 if step == 0 else 0.6, 0.95 if step == 0 else 0.7)
            elif style == "pulse":
                every = 2 if plan.density >= g.density[0] - 0.2 else 4
                for step in range(0, S, every):
                    hit(step, every * 0.8, 0.6)
            elif style == "strum":
                bass_note = self.scale.root_midi(self.degrees[bar], 40)
                guitar = [bass_note] + voice_chord(pcs, 57, None) + [voice_chord(pcs, 57, None)[0] + 12]
                strums = "D.DU.UDU" if grid.meter == 4 else "D.D.DU"
                for i, ch in enumerate(strums):
                    if ch == "D":
                        hit(2 * i, 3.5, 0.7, guitar, spread=0.012)
                    elif ch == "U":
                        hit(2 * i, 1.8, 0.45, guitar[::-1][:3], spread=0.01)
            elif style == "stabs":
                steps = (2, 6, 10, 14) if self.rng.random() < 0.7 else (3, 6, 10, 13)
                for step in steps:
                    if step < S:
                        hit(step, 1.2, 0.7)
            elif style == "held":
                hit(0, S - 1, 0.55, spread=0.02)
                if self.rng.random() < 0.35:
                    hit(S - 6, 4, 0.4, spread=0.02)
            elif style == "comp":
                rhythm = [((0, 2.5), (6, 1.0)), ((2, 1.0), (10, 1.5)), ((0, 1.5), (10, 1.0)), ((6, 1.0), (14, 1.5))]
                for step, dur in rhythm[int(self.rng.integers(len(rhythm)))]:
                    hit(step, dur, 0.5)
            elif style == "pad":
                if bar % g.bars_per_chord == 0:
                    hit(0, S * g.bars_per_chord + 1, 0.5)
            elif style == "skank":
                steps = (4, 12) if self.rng.random() < 0.75 else (2, 6, 10, 14)
                for step in steps:
                    hit(step, 0.9, 0.65)
            elif style == "arpeggio":
                chord = voicing + [voicing[0] + 12]
                order = chord + chord[-2:0:-1]
                unit = 2 if plan.density < 1.6 else 1
                for j, step in enumerate(range(0, S, unit)):
                    m = order[j % len(order)]
                    notes.append((self.t(bar, step), unit * 2.5 * grid.step, m, self.vel(0.5, step)))
            else:  # pragma: no cover - genres only name the styles above
                raise ValueError(f"unknown comp style {style}")
        return notes

    # --- bass ---

    def bass(self, score: Score) -> list[Note]:
        g, grid = self.genre, self.grid
        S = grid.steps_per_bar
        notes: list[Note] = []
        style = g.bass_style
        for bar in range(self.n_bars):
            root = self.root(bar)
            next_root = self.root(bar + 1) if bar + 1 < self.n_bars else root
            third = root + ((self.scale.chord(self.degrees[bar], 3)[1] - root) % 12)

            def add(step: float, dur_steps: float, midi: int, base: float = 0.8) -> None:
                notes.append((self.t(bar, step), dur_steps * grid.step, int(midi), self.vel(base, int(step))))

            if style == "root8":
                for step in range(0, S, 2):
                    add(step, 1.8, root + (12 if step == S - 2 and self.rng.random() < 0.3 else 0))
            elif style == "chug":
                for step in range(0, S, 1 if g.name == "metal" else 2):
                    if step % 4 != 3 or self.rng.random() < 0.5:
                        add(step, 0.8, root)
            elif style == "root_pulse":
                for step, dur in ((0, 2.8), (3, 2.8), (6, 1.8), (8, 2.8), (11, 2.8), (14, 1.8)):
                    if step < S:
                        add(step, dur, root + (12 if step == 14 and self.rng.random() < 0.4 else 0))
            elif style == "offbeat":
                for step in range(2, S, 4):
                    add(step, 1.6, root + (12 if self.rng.random() < 0.15 else 0))
            elif style == "walking":
                beats = grid.meter
                line = [root]
                direction = 1 if next_root >= root else -1
                pool = self.scale.degrees_in_range(root - 7, root + 12)
                for _ in range(beats - 2):
                    line.append(nearest_in(pool, line[-1] + direction * 2 + int(self.rng.integers(-1, 2))))
                line.append(next_root + (1 if self.rng.random() < 0.5 else -1))
                for beat, m in enumerate(line[:beats]):
                    add(4 * beat, 3.6, m, 0.75)
            elif style == "pedal":
                if bar % g.bars_per_chord == 0:
                    add(0, S * g.bars_per_chord, root, 0.7)
            elif style == "root_fifth":
                add(0, 3.5, root)
                if grid.meter == 4:
                    add(8, 3.5, root - 5 if root - 5 >= g.bass_register - 5 else root + 7)
            elif style == "reggae":
                riff = ((2, 0, 1.8), (4, 0, 1.0), (6, 7, 1.8), (8, 12, 1.8), (11, 7, 1.0), (12, "3", 1.8))
                for step, interval, dur in riff:
                    if step >= S:
                        continue
                    midi = third if interval == "3" else root + int(interval)
                    add(step, dur, midi, 0.85)
            elif style == "808":
                pass  # written from the kick pattern once the drums exist
            else:  # pragma: no cover
                raise ValueError(f"unknown bass style {style}")
        return notes

    def bass_808(self, kick_times: list[float]) -> list[Note]:
        """Sub-bass notes that follow the kick, the hip-hop way."""
        notes: list[Note] = []
        times = sorted(kick_times)
        for i, t in enumerate(times):
            bar = min(int(t // self.grid.bar), self.n_bars - 1)
            end = times[i + 1] if i + 1 < len(times) else t + self.grid.bar
            root = self.root(bar)
            notes.append((t, max(0.1, end - t - 0.02), root, 0.9))
        return notes

    # --- melody ---

    def _rhythm(self, density: float) -> list[tuple[int, float]]:
        """One bar of onsets (step, duration in steps) with `density` onsets per beat on average."""
        S = self.grid.steps_per_bar
        weights = np.array([_metric_weight(s) for s in range(S)])
        p = np.clip(weights * density * self.grid.meter / weights.sum(), 0.0, 0.95)
        onsets = [s for s in range(S) if self.rng.random() < p[s]]
        if not onsets:
            onsets = [0]
        out = []
        for i, s in enumerate(onsets):
            nxt = onsets[i + 1] if i + 1 < len(onsets) else S
            out.append((s, float(nxt - s)))
        return out

    def _contour(self, n: int) -> list[int]:
        steps = self.rng.choice([-3, -2, -1, 0, 1, 2, 3], size=n, p=[0.04, 0.13, 0.3, 0.06, 0.3, 0.13, 0.04])
        return [int(s) for s in steps]

    def melody(self) -> list[Note]:
        g, grid, plan = self.genre, self.grid, self.plan
        S = grid.steps_per_bar
        centre = int(round(plan.register))
        allowed = self.scale.pentatonic_degrees() if g.pentatonic else None
        pool = self.scale.degrees_in_range(centre - 10, centre + 10, allowed)
        notes: list[Note] = []
        style = g.melody_style
        legato = {"vocal": 0.9, "riff": 0.6, "bebop": 0.85, "lyrical": 0.97, "sparse": 1.0, "arp": 0.5}[style]

        if style == "arp":
            unit = 1 if plan.density >= 2.4 else 2
            shape = [0, 1, 2, 3, 2, 1] if self.rng.random() < 0.5 else [0, 1, 2, 3]
            for bar in range(self.n_bars):
                pcs = self.chord_pcs(bar)
                tones = [m for m in range(centre - 6, centre + 13) if m % 12 in pcs][:4]
                for j, step in enumerate(range(0, S, unit)):
                    m = tones[shape[j % len(shape)] % len(tones)]
                    notes.append((self.t(bar, step), unit * legato * grid.step, m, self.vel(0.6, step)))
            return notes

        density = plan.density
        if style == "sparse":
            density = min(density, 0.8)
        if style == "bebop":
            motif_a = [(s, 2.0) for s in range(0, S, 2) if self.rng.random() < 0.88] or [(0, 2.0)]
        else:
            motif_a = self._rhythm(density)
        motif_b = self._rhythm(density)
        contour_a = self._contour(len(motif_a))
        contour_b = self._contour(len(motif_b))
        phrase = ("A", "A", "B", "A") if style in ("vocal", "riff") else ("A", "B", "A", "C")
        idx = int(np.argmin(np.abs(pool - centre)))
        for bar in range(self.n_bars):
            slot = phrase[bar % 4]
            if style == "riff":
                slot = "A"
            if slot == "C":  # phrase ending: one long note on a chord tone
                pcs = self.chord_pcs(bar)
                chord_tones = np.array([m for m in pool if m % 12 in pcs] or list(pool))
                target = nearest_in(chord_tones, pool[idx])
                notes.append((self.t(bar, 0), (S - 2) * grid.step, target, self.vel(0.7, 0)))
                idx = int(np.argmin(np.abs(pool - target)))
                continue
            rhythm, contour = (motif_a, contour_a) if slot == "A" else (motif_b, contour_b)
            if style == "vocal" and bar % 4 == 3:  # breathe: the phrase's last bar is sung shorter
                rhythm = [r for r in rhythm if r[0] < S // 2] or rhythm[:1]
            pcs = self.chord_pcs(bar)
            if slot == "A" and style in ("riff", "vocal", "lyrical"):
                # a recurring motif starts on the chord tone nearest the melody's centre
                chord_tones = np.array([m for m in pool if m % 12 in pcs] or list(pool))
                idx = int(np.argmin(np.abs(pool - nearest_in(chord_tones, centre))))
            for (step, dur), move in zip(rhythm, contour, strict=False):
                if pool[idx] > centre + 6:
                    move = -abs(move)
                elif pool[idx] < centre - 6:
                    move = abs(move)
                idx = int(np.clip(idx + move, 0, len(pool) - 1))
                midi = int(pool[idx])
                if step % 4 == 0:  # strong beats sit on chord tones
                    chord_tones = np.array([m for m in pool if m % 12 in pcs] or list(pool))
                    midi = nearest_in(chord_tones, midi)
                    idx = int(np.argmin(np.abs(pool - midi)))
                length = dur * legato
                if style == "sparse":
                    length = max(length, 4.0)
                notes.append((self.t(bar, step), length * grid.step, midi, self.vel(0.7, step)))
        return notes

    # --- drums ---

    def drums(self) -> tuple[list[Hit], list[float]]:
        g, grid, plan = self.genre, self.grid, self.plan
        if not g.drum_patterns:
            return [], []
        pattern = g.drum_patterns[plan.drums % len(g.drum_patterns)]
        S = grid.steps_per_bar
        busy = plan.density > g.density[0] + 0.5 * g.density[1]
        hits: list[Hit] = []
        kicks: list[float] = []
        for bar in range(self.n_bars):
            fill = g.fills and bar % 4 == 3 and self.rng.random() < 0.6
            for voice, raw in pattern.items():
                bar_pattern = _pattern_for_meter(voice, raw, grid.meter)
                for step, ch in enumerate(bar_pattern):
                    v = _velocity(ch)
                    if voice == "chh" and busy and ch == "." and step % 2 == 1:
                        v = 0.25  # busier tracks fill in sixteenth hats
                    if voice in ("snare", "clap") and ch == "." and g.name in ("hiphop", "rock", "pop") and self.rng.random() < 0.04:
                        v = 0.28  # a ghost note
                    if fill and step >= S - 4 and voice != "kick":
                        continue
                    if v <= 0:
                        continue
                    t = self.t(bar, step)
                    vel = float(np.clip(v * (0.7 + 0.45 * plan.energy) + self.rng.normal(0, 0.05), 0.05, 1.3))
                    hits.append((t, voice, vel))
                    if voice in ("kick", "kick808"):
                        kicks.append(t)
            if fill:
                voice = "tom" if g.name in ("metal", "rock") and self.rng.random() < 0.5 else "snare"
                for step in range(S - 4, S):
                    hits.append((self.t(bar, step), voice, 0.6 + 0.1 * (step - S + 4)))
            if g.crash_on_phrase and bar % 4 == 0:
                hits.append((self.t(bar, 0), "crash", 0.7))
        return hits, kicks


def compose(plan: TrackPlan, seconds: float, rng: np.random.Generator) -> Score:
    """The score of a track long enough to cover `seconds` plus a pre-roll bar."""
    return Composer(plan, seconds, rng).compose()

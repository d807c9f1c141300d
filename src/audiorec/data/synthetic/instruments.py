"""Tone and drum generators: the timbres genres are told apart by.

Tonal instruments are band-limited wavetable oscillators: one period of the tone is built
from its harmonic spectrum (an inverse FFT), so that a note costs a table lookup per
sample whatever its number of harmonics. Spectral shape gives the timbre (saw-like,
square-like, vowel formants, organ drawbars), a second, darker table reached through a
crossfade gives plucked and struck tones their decay from bright to mellow, and
ADSR envelopes, vibrato and a detuned second voice do the rest. Bells and electric pianos
use two-operator FM. Drums are synthesised one-shots (pitch-swept sines, filtered noise,
inharmonic metal partials), rendered once per track and mixed at their onsets.

Everything takes a `numpy.random.Generator` where it needs noise, so a track's audio
depends only on its own seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import signal

from .music import midi_to_hz

#: samples per wavetable period; a power of two so that wrapping is a bit mask. At 8192 entries,
#: nearest-entry lookup is as clean as interpolation (image noise below -65 dB) and cheaper.
TABLE_SIZE = 8192


@dataclass(frozen=True)
class Tone:
    """A tonal instrument.

    tilt:      harmonic k has amplitude k**-tilt at brightness 0.5 (1 = sawtooth, 2 = mellow);
               brightness b lowers the tilt by `tilt_range * (b - 0.5)`.
    even:      gain of even harmonics (1 saw-like, 0 square/clarinet-like).
    formants:  (centre Hz, bandwidth Hz, gain) peaks shaping the spectrum (voices, reeds, bodies).
    drawbars:  explicit harmonic amplitudes (organs); overrides tilt.
    dark_tilt: tilt of the table a struck/plucked note decays towards over `bright_decay` s.
    fm:        (ratio, index, index decay s) for two-operator FM instead of a table.
    """

    name: str
    tilt: float = 1.0
    tilt_range: float = 1.2
    even: float = 1.0
    max_harmonics: int = 40
    formants: tuple[tuple[float, float, float], ...] = ()
    drawbars: tuple[float, ...] = ()
    dark_tilt: float | None = None
    bright_decay: float = 0.3
    attack: float = 0.005
    decay: float = 0.3
    sustain: float = 0.7
    release: float = 0.08
    vibrato_rate: float = 0.0
    vibrato_depth: float = 0.0  # semitones
    vibrato_delay: float = 0.2
    detune_cents: float = 0.0
    breath: float = 0.0
    fm: tuple[float, float, float] | None = None
    gain: float = 1.0
    octave: int = field(default=0)  # shift applied to every note (e.g. -1 for a bass doubled lower)


TONES: dict[str, Tone] = {
    t.name: t
    for t in (
        # --- leads ---
        Tone("voice", tilt=1.3, formants=((700, 130, 9.0), (1200, 160, 5.0), (2600, 250, 3.0)),
             attack=0.04, decay=0.4, sustain=0.85, release=0.12, vibrato_rate=5.2, vibrato_depth=0.25,
             vibrato_delay=0.18, breath=0.04, gain=0.9),
        Tone("overdrive_lead", tilt=1.0, attack=0.008, decay=0.5, sustain=0.8, release=0.1,
             vibrato_rate=5.5, vibrato_depth=0.18, vibrato_delay=0.25, gain=0.8),
        Tone("square_lead", tilt=1.0, even=0.05, attack=0.005, decay=0.2, sustain=0.6, release=0.06,
             vibrato_rate=6.0, vibrato_depth=0.08, gain=0.6),
        Tone("pluck_synth", tilt=0.9, dark_tilt=2.6, bright_decay=0.08, attack=0.002, decay=0.25,
             sustain=0.0, release=0.08, detune_cents=9.0, gain=0.8),
        Tone("flute", tilt=2.6, tilt_range=0.8, even=0.6, max_harmonics=8, attack=0.06, decay=0.3,
             sustain=0.85, release=0.1, vibrato_rate=4.8, vibrato_depth=0.12, vibrato_delay=0.25,
             breath=0.08, gain=0.9),
        Tone("sax", tilt=1.1, even=0.8, formants=((500, 200, 4.0), (1500, 300, 3.0), (2900, 400, 1.5)),
             attack=0.03, decay=0.3, sustain=0.8, release=0.08, vibrato_rate=5.0, vibrato_depth=0.15,
             breath=0.05, gain=0.8),
        Tone("brass", tilt=1.2, formants=((1100, 500, 3.0),), dark_tilt=2.4, bright_decay=0.25,
             attack=0.04, decay=0.3, sustain=0.75, release=0.08, vibrato_rate=5.0, vibrato_depth=0.08,
             gain=0.75),
        Tone("violin", tilt=1.0, formants=((450, 200, 2.5), (2800, 700, 3.0)), attack=0.08, decay=0.3,
             sustain=0.9, release=0.15, vibrato_rate=5.8, vibrato_depth=0.22, vibrato_delay=0.15,
             detune_cents=4.0, gain=0.75),
        Tone("fiddle", tilt=0.95, formants=((600, 250, 2.5), (2500, 600, 3.0)), attack=0.03, decay=0.2,
             sustain=0.85, release=0.08, vibrato_rate=6.2, vibrato_depth=0.15, vibrato_delay=0.1,
             gain=0.75),
        Tone("bell", fm=(3.5, 2.2, 0.9), attack=0.003, decay=1.6, sustain=0.0, release=1.0, gain=0.6),
        Tone("glass", fm=(2.0, 1.2, 1.5), attack=0.01, decay=2.5, sustain=0.0, release=1.2,
             detune_cents=6.0, gain=0.55),
        Tone("whistle", tilt=3.5, tilt_range=0.5, max_harmonics=4, attack=0.03, decay=0.2, sustain=0.9,
             release=0.06, vibrato_rate=6.5, vibrato_depth=0.1, breath=0.05, gain=0.7),
        # --- chords ---
        Tone("dist_guitar", tilt=0.8, tilt_range=0.6, attack=0.003, decay=0.6, sustain=0.6, release=0.05,
             detune_cents=7.0, gain=0.8),
        Tone("piano", tilt=1.4, dark_tilt=2.6, bright_decay=0.35, attack=0.002, decay=1.2, sustain=0.0,
             release=0.12, gain=0.9),
        Tone("epiano", fm=(1.0, 1.6, 0.5), attack=0.002, decay=1.4, sustain=0.0, release=0.15,
             gain=0.8),
        Tone("organ", drawbars=(1.0, 0.8, 0.6, 0.5, 0.0, 0.35, 0.0, 0.3), attack=0.01, decay=0.1,
             sustain=1.0, release=0.05, vibrato_rate=6.8, vibrato_depth=0.05, vibrato_delay=0.0,
             gain=0.45),
        Tone("supersaw", tilt=1.0, attack=0.005, decay=0.25, sustain=0.5, release=0.12,
             detune_cents=14.0, gain=0.5),
        Tone("bright_synth", tilt=0.95, even=0.3, attack=0.01, decay=0.3, sustain=0.6, release=0.1,
             detune_cents=8.0, gain=0.5),
        Tone("strings", tilt=1.1, formants=((500, 300, 2.0), (3000, 900, 2.0)), attack=0.35, decay=0.5,
             sustain=0.9, release=0.5, vibrato_rate=5.3, vibrato_depth=0.1, detune_cents=9.0,
             gain=0.5),
        Tone("warm_pad", tilt=1.8, tilt_range=1.0, attack=0.9, decay=1.0, sustain=0.9, release=1.5,
             detune_cents=11.0, vibrato_rate=0.3, vibrato_depth=0.05, gain=0.5),
        Tone("acoustic_guitar", tilt=1.2, formants=((250, 150, 3.0), (2500, 1200, 1.5)), dark_tilt=2.8,
             bright_decay=0.15, attack=0.002, decay=0.9, sustain=0.0, release=0.15, gain=0.7),
        Tone("clean_guitar", tilt=1.3, dark_tilt=2.5, bright_decay=0.1, attack=0.002, decay=0.35,
             sustain=0.0, release=0.05, gain=0.7),
        Tone("harp", tilt=2.0, dark_tilt=3.0, bright_decay=0.4, attack=0.002, decay=1.5, sustain=0.0,
             release=0.6, gain=0.6),
        # --- basses ---
        Tone("electric_bass", tilt=1.6, dark_tilt=2.6, bright_decay=0.2, max_harmonics=20, attack=0.004,
             decay=0.8, sustain=0.35, release=0.05, gain=1.0),
        Tone("synth_bass", tilt=1.2, even=0.4, max_harmonics=20, attack=0.003, decay=0.2, sustain=0.6,
             release=0.04, gain=0.9),
        Tone("saw_bass", tilt=1.0, dark_tilt=2.4, bright_decay=0.1, max_harmonics=24, attack=0.003,
             decay=0.15, sustain=0.5, release=0.03, gain=0.8),
        Tone("sub808", tilt=4.0, tilt_range=0.6, max_harmonics=3, attack=0.003, decay=0.9, sustain=0.3,
             release=0.2, gain=1.4),
        Tone("upright_bass", tilt=2.0, dark_tilt=3.2, bright_decay=0.12, max_harmonics=12, attack=0.008,
             decay=0.6, sustain=0.0, release=0.08, gain=1.3),
        Tone("cello", tilt=1.2, formants=((300, 200, 3.0), (1500, 600, 1.5)), attack=0.15, decay=0.5,
             sustain=0.85, release=0.3, vibrato_rate=5.0, vibrato_depth=0.12, gain=0.7),
        Tone("sub_sine", tilt=6.0, tilt_range=0.0, max_harmonics=2, attack=0.4, decay=1.0, sustain=0.9,
             release=1.0, gain=1.0),
        Tone("dub_bass", tilt=3.0, tilt_range=0.8, max_harmonics=6, attack=0.01, decay=0.5, sustain=0.6,
             release=0.06, gain=1.4),
    )
}


def _harmonic_amplitudes(tone: Tone, f0: float, brightness: float, sr: int, tilt: float) -> np.ndarray:
    k_max = int(min(tone.max_harmonics, max(1, np.floor(0.45 * sr / f0))))
    k = np.arange(1, k_max + 1, dtype=np.float64)
    if tone.drawbars:
        amps = np.zeros(k_max)
        n = min(k_max, len(tone.drawbars))
        amps[:n] = tone.drawbars[:n]
        amps *= (0.6 + 0.8 * brightness) ** (k - 1) / (1.4 ** (k - 1))
    else:
        amps = k ** (-tilt)
        amps[1::2] *= tone.even
    if tone.formants:
        freqs = k * f0
        shape = np.full(k_max, 0.35)
        for centre, width, gain in tone.formants:
            shape += gain * np.exp(-0.5 * ((freqs - centre) / width) ** 2)
        amps *= shape
    return amps


def _table(amps: np.ndarray) -> np.ndarray:
    """One period (TABLE_SIZE samples) of a sum of sines, peak-normalised."""
    spectrum = np.zeros(TABLE_SIZE // 2 + 1, dtype=np.complex128)
    spectrum[1 : len(amps) + 1] = -1j * amps * (TABLE_SIZE / 2)
    table = np.fft.irfft(spectrum, n=TABLE_SIZE)
    peak = np.max(np.abs(table))
    if peak > 0:
        table /= peak
    return table


def envelope(n_on: int, n_total: int, sr: int, tone: Tone) -> np.ndarray:
    """ADSR with exponential decay and release; release starts at note-off (n_on)."""
    t = np.arange(n_total) / sr
    attack = max(tone.attack, 1.0 / sr)
    env = np.where(
        t < attack,
        t / attack,
        tone.sustain + (1.0 - tone.sustain) * np.exp(-(t - attack) / max(tone.decay, 1e-3)),
    )
    env[n_on:] *= np.exp(-(np.arange(n_total - n_on) + 1) / (max(tone.release, 1e-3) * sr))
    return env


def _lookup(table: np.ndarray, phase: np.ndarray) -> np.ndarray:
    """Table values at phases given in cycles (any real number: the table wraps)."""
    idx = (phase * TABLE_SIZE).astype(np.int64) & (TABLE_SIZE - 1)
    return table[idx]


class ToneRenderer:
    """Renders notes of one track, caching tables and finished notes (loops repeat a lot)."""

    def __init__(self, sr: int, rng: np.random.Generator) -> None:
        self.sr = sr
        self.rng = rng
        self._tables: dict[tuple, tuple[np.ndarray, np.ndarray | None]] = {}
        self._notes: dict[tuple, np.ndarray] = {}
        self._vibratos: dict[str, np.ndarray] = {}
        self._envelopes: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _tables_for(self, tone: Tone, midi: int, brightness: float) -> tuple[np.ndarray, np.ndarray | None]:
        key = (tone.name, midi, round(brightness, 2))
        if key not in self._tables:
            f0 = float(midi_to_hz(midi))
            tilt = max(0.3, tone.tilt - tone.tilt_range * (brightness - 0.5))
            bright = _table(_harmonic_amplitudes(tone, f0, brightness, self.sr, tilt))
            dark = None
            if tone.dark_tilt is not None:
                dark = _table(_harmonic_amplitudes(tone, f0, brightness, self.sr, tone.dark_tilt))
            self._tables[key] = (bright, dark)
        return self._tables[key]

    def note(self, tone: Tone, midi: int, seconds: float, velocity: float, brightness: float,
             max_samples: int | None = None) -> np.ndarray:
        """A note's samples, including its release tail (cut at `max_samples`)."""
        midi = int(midi) + 12 * tone.octave
        velocity = round(float(velocity), 2)
        n_on = max(1, int(round(seconds * self.sr)))
        # Struck and plucked tones (sustain 0) ring with their decay until note-off and are
        # damped by the release after it, exactly like sustained ones, so one rule serves both.
        # Four release times take the tail to -35 dB; a short fade hides the cut.
        n_total = n_on + int(tone.release * 4.0 * self.sr)
        if max_samples is not None:
            n_total = max(1, min(n_total, max_samples))
            n_on = min(n_on, n_total)
        key = (tone.name, midi, n_on, n_total, velocity, round(brightness, 2))
        cached = self._notes.get(key)
        if cached is not None:
            return cached
        env = self._envelope(tone, n_on, n_total)
        fade = min(n_total, int(0.01 * self.sr))
        env[n_total - fade :] *= np.linspace(1.0, 0.0, fade)
        f0 = float(midi_to_hz(midi))
        t = np.arange(n_total) / self.sr
        if tone.fm is not None:
            out = self._fm(tone, f0, t, brightness)
        else:
            out = self._wavetable(tone, midi, f0, t, brightness)
            if tone.detune_cents:
                out = 0.6 * out + 0.6 * self._wavetable(
                    tone, midi, f0 * 2 ** (tone.detune_cents / 1200.0), t, brightness, phase0=0.37
                )
        if tone.breath:
            noise = self.rng.standard_normal(n_total)
            out = out + tone.breath * noise * (0.5 + brightness)
        out = out * env * (velocity * tone.gain)
        self._notes[key] = out
        return out

    def _envelope(self, tone: Tone, n_on: int, n_total: int) -> np.ndarray:
        """`envelope`, sliced from attack/decay and release curves computed once per tone."""
        curves = self._envelopes.get(tone.name)
        if curves is None or len(curves[0]) < n_total:
            length = max(n_total, 4 * self.sr)
            onset = envelope(length, length, self.sr, tone)
            release = np.exp(-(np.arange(length) + 1) / (max(tone.release, 1e-3) * self.sr))
            curves = self._envelopes[tone.name] = (onset, release)
        env = curves[0][:n_total].copy()
        env[n_on:] *= curves[1][: n_total - n_on]
        return env

    def _vibrato(self, tone: Tone, n: int) -> np.ndarray:
        """Phase deviation (in cycles per Hz of pitch) of the tone's vibrato: the same for every
        note of the tone, so it is computed once per track and sliced."""
        curve = self._vibratos.get(tone.name)
        if curve is None or len(curve) < n:
            length = max(n, 4 * self.sr)
            t = np.arange(length) / self.sr
            ramp = np.clip((t - tone.vibrato_delay) / 0.3, 0.0, 1.0)
            depth = (2.0 ** (tone.vibrato_depth / 12.0)) - 1.0  # relative frequency swing
            # integral of depth * sin(2 pi r t), with the ramp applied to the result
            curve = -depth * ramp * np.cos(2 * np.pi * tone.vibrato_rate * t) / (2 * np.pi * tone.vibrato_rate)
            curve += depth * ramp / (2 * np.pi * tone.vibrato_rate)  # starts at zero deviation
            self._vibratos[tone.name] = curve
        return curve[:n]

    def _phase(self, f0: float, t: np.ndarray, tone: Tone, phase0: float) -> np.ndarray:
        """Phase in cycles (unwrapped: `_lookup` wraps it)."""
        phase = phase0 + f0 * t
        if tone.vibrato_depth > 0 and tone.vibrato_rate > 0:
            phase += f0 * self._vibrato(tone, len(t))
        return phase

    def _wavetable(self, tone: Tone, midi: int, f0: float, t: np.ndarray, brightness: float,
                   phase0: float = 0.0) -> np.ndarray:
        bright, dark = self._tables_for(tone, midi, brightness)
        phase = self._phase(f0, t, tone, phase0)
        out = _lookup(bright, phase)
        if dark is not None:
            mix = np.exp(-t / max(tone.bright_decay * (0.5 + brightness), 1e-3))
            out = mix * out + (1.0 - mix) * _lookup(dark, phase)
        return out

    def _fm(self, tone: Tone, f0: float, t: np.ndarray, brightness: float) -> np.ndarray:
        ratio, index, index_decay = tone.fm  # type: ignore[misc]
        index_t = index * (0.4 + 1.2 * brightness) * np.exp(-t / index_decay)
        modulator = np.sin(2 * np.pi * ratio * f0 * t)
        out = np.sin(2 * np.pi * f0 * t + index_t * modulator)
        if tone.detune_cents:
            f1 = f0 * 2 ** (tone.detune_cents / 1200.0)
            out = 0.6 * out + 0.6 * np.sin(2 * np.pi * f1 * t + index_t * np.sin(2 * np.pi * ratio * f1 * t))
        if tone.name == "epiano":  # the tine: a quickly fading high partial, the Rhodes "bark"
            out = out + 0.25 * brightness * np.sin(2 * np.pi * 14.0 * f0 * t) * np.exp(-t / 0.05) * (14 * f0 < 0.45 * self.sr)
        return out


# --- drums ---

DRUM_VOICES = ("kick", "kick808", "snare", "clap", "rim", "chh", "ohh", "ride", "crash", "shaker", "tom")


@dataclass(frozen=True)
class DrumKit:
    """Per-track tuning of the drum voices (so two rock tracks do not share one kit)."""

    kick_pitch: float = 55.0
    kick_decay: float = 0.25
    snare_pitch: float = 190.0
    snare_decay: float = 0.16
    hat_cutoff: float = 7000.0
    metal_pitch: float = 1.0
    tom_pitch: float = 110.0


def _sos(kind: str, freq: float | tuple[float, float], sr: int, order: int = 2) -> np.ndarray:
    nyq = sr / 2.0
    if isinstance(freq, tuple):
        lo, hi = (min(max(f / nyq, 1e-4), 0.99) for f in freq)
        return signal.butter(order, [lo, hi], btype="bandpass", output="sos")
    return signal.butter(order, min(max(freq / nyq, 1e-4), 0.99), btype=kind, output="sos")


def drum_sounds(
    kit: DrumKit, sr: int, brightness: float, rng: np.random.Generator, voices: set[str] | None = None
) -> dict[str, np.ndarray]:
    """One-shot samples of the drum voices a track uses (all of them if `voices` is None)."""
    wanted = set(DRUM_VOICES) if voices is None else set(voices)
    out: dict[str, np.ndarray] = {}

    def t_of(seconds: float) -> np.ndarray:
        return np.arange(int(seconds * sr)) / sr

    def noise(seconds: float) -> np.ndarray:
        return rng.standard_normal(int(seconds * sr))

    if "kick" in wanted:  # a sine swept down from a click to the body pitch
        t = t_of(0.5)
        freq = kit.kick_pitch + 110.0 * np.exp(-t / 0.03)
        kick = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / kit.kick_decay)
        kick[: int(0.004 * sr)] += 0.4 * noise(0.004) * (0.5 + brightness)
        out["kick"] = kick
    if "kick808" in wanted:  # a long sub with a little saturation
        t = t_of(1.2)
        freq = 0.8 * kit.kick_pitch + 60.0 * np.exp(-t / 0.02)
        out["kick808"] = np.tanh(1.8 * np.sin(2 * np.pi * np.cumsum(freq) / sr)) * np.exp(-t / (3.0 * kit.kick_decay))
    if "snare" in wanted:  # a tone plus band-passed noise
        t = t_of(0.4)
        tone = np.sin(2 * np.pi * kit.snare_pitch * t) * np.exp(-t / 0.05)
        rattle = signal.sosfilt(_sos("", (1200.0, 3500.0 + 4000.0 * brightness), sr), noise(0.4))
        out["snare"] = 0.6 * tone + 2.2 * rattle * np.exp(-t / kit.snare_decay)
    if "clap" in wanted:  # a few noise bursts, then a tail
        t = t_of(0.35)
        burst = signal.sosfilt(_sos("", (900.0, 2500.0 + 2000.0 * brightness), sr), noise(0.35))
        env = np.exp(-t / 0.09)
        for k in range(3):
            start = k * 0.011
            env = env + np.where((t >= start) & (t < start + 0.01), np.exp(-(t - start) / 0.004), 0.0)
        out["clap"] = 2.5 * burst * env
    if "rim" in wanted:  # a short woody click
        t = t_of(0.08)
        out["rim"] = np.sin(2 * np.pi * 1700.0 * t) * np.exp(-t / 0.012) + 0.3 * np.sin(2 * np.pi * 450 * t) * np.exp(-t / 0.02)
    cymbals = [v for v in ("chh", "ohh", "ride", "crash") if v in wanted]
    if cymbals:  # high-passed noise plus inharmonic square partials (the metal)
        longest = 1.4
        t_all = t_of(longest)
        metal_freqs = kit.metal_pitch * np.array([205.3, 304.4, 369.6, 522.7, 540.0, 800.0]) * 8.0
        metal_freqs = metal_freqs[metal_freqs < 0.45 * sr]
        ring_all = np.zeros_like(t_all)
        for f in metal_freqs:
            ring_all += np.sign(np.sin(2 * np.pi * f * t_all))
        ring_all = signal.sosfilt(_sos("highpass", 3000.0, sr), ring_all / max(len(metal_freqs), 1))
        hiss_all = noise(longest)
        hiss_hi = signal.sosfilt(_sos("highpass", kit.hat_cutoff, sr), hiss_all)
        hiss_lo = signal.sosfilt(_sos("highpass", 0.6 * kit.hat_cutoff, sr), hiss_all) if {"ride", "crash"} & wanted else hiss_hi
        for name, seconds, decay in (("chh", 0.12, 0.03), ("ohh", 0.5, 0.18), ("ride", 1.2, 0.45), ("crash", 1.4, 0.6)):
            if name not in wanted:
                continue
            n = int(seconds * sr)
            hiss = (hiss_lo if name in ("ride", "crash") else hiss_hi)[:n]
            mix = (0.8 * hiss + (0.6 if name == "ride" else 0.3) * ring_all[:n]) * np.exp(-t_all[:n] / decay)
            out[name] = mix * (0.6 + 0.6 * brightness)
    if "shaker" in wanted:  # band-passed noise with a soft attack
        t = t_of(0.12)
        shaker = signal.sosfilt(_sos("", (4000.0, min(9500.0, 0.45 * sr)), sr), noise(0.12))
        out["shaker"] = 1.5 * shaker * (t / 0.02).clip(0, 1) * np.exp(-t / 0.035)
    if "tom" in wanted:
        t = t_of(0.45)
        freq = kit.tom_pitch + 60.0 * np.exp(-t / 0.04)
        out["tom"] = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-t / 0.18)
    return out

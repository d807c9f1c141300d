"""From a track plan to a mastered clip: compose, play every part, mix, add room, master.

Parts are played into separate buses (lead, comp, bass, drums) so that each gets the
processing its genre gives it (guitar distortion and cabinet roll-off, brightness-driven
low-pass, house side-chain pumping, a reverb send), then balanced by the genre's mix and
mastered to a loudness that follows the track's energy. The clip is an excerpt: it
starts at a random point of the first bar, with chords and reverb already sounding.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from .composition import Note, TrackPlan, compose
from .genres import GENRES
from .instruments import TONES, DrumKit, ToneRenderer, drum_sounds

# independent random streams of one track's audio, keyed after the dataset seed
AUDIO_STREAM = 7


def track_rng(seed: int, index: int) -> np.random.Generator:
    """The track's own generator: its audio depends on nothing else, whatever the worker."""
    return np.random.default_rng([seed, AUDIO_STREAM, index])


def cutoff_hz(brightness: float) -> float:
    """Low-pass corner that brightness maps to: 0.25 -> ~1.5 kHz, 0.5 -> ~3.4 kHz, 0.8 -> ~8 kHz."""
    return 700.0 * 2.0 ** (brightness * 4.6)


def _lowpass(x: np.ndarray, freq: float, sr: int, order: int = 2) -> np.ndarray:
    wn = min(freq / (sr / 2.0), 0.95)
    return signal.sosfilt(signal.butter(order, wn, btype="lowpass", output="sos"), x)


def _highpass(x: np.ndarray, freq: float, sr: int) -> np.ndarray:
    return signal.sosfilt(signal.butter(2, freq / (sr / 2.0), btype="highpass", output="sos"), x)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


def _play(notes: list[Note], tone_name: str, renderer: ToneRenderer, brightness: float, n: int, sr: int) -> np.ndarray:
    bus = np.zeros(n)
    tone = TONES[tone_name]
    for onset, seconds, midi, vel in notes:
        start = int(round(onset * sr))
        if start >= n:
            continue
        x = renderer.note(tone, midi, seconds, vel, brightness, max_samples=n - start)
        end = min(n, start + len(x))
        bus[start:end] += x[: end - start]
    return bus


def _reverb_ir(room: float, brightness: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Exponentially decaying noise, darker as it decays: a cheap but convincing room."""
    n = int(room * sr)
    t = np.arange(n) / sr
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / room)
    ir = _lowpass(ir, 2500.0 + 4000.0 * brightness, sr)
    ir[: int(0.012 * sr)] = 0.0  # pre-delay
    return ir / np.sqrt(np.sum(ir * ir))


def render_track(plan: TrackPlan, seconds: float, sr: int, seed: int) -> np.ndarray:
    """The clip of one track: float32 mono, exactly `seconds * sr` samples, peak below 1."""
    rng = track_rng(seed, plan.index)
    genre = GENRES[plan.genre]
    score = compose(plan, seconds, rng)
    n_clip = int(round(seconds * sr))
    offset = int(rng.uniform(0.25, 1.0) * score.bar_seconds * sr)
    n = offset + n_clip + sr // 2
    renderer = ToneRenderer(sr, rng)
    b = plan.brightness

    lead = _play(score.parts["lead"], plan.lead, renderer, b, n, sr)
    comp = _play(score.parts["comp"], plan.comp, renderer, b, n, sr)
    bass = _play(score.parts["bass"], plan.bass, renderer, b, n, sr)

    drums = np.zeros(n)
    if score.hits:
        kit = DrumKit(
            kick_pitch=float(rng.uniform(45, 62)),
            kick_decay=float(rng.uniform(0.15, 0.35)),
            snare_pitch=float(rng.uniform(160, 240)),
            snare_decay=float(rng.uniform(0.1, 0.22)),
            hat_cutoff=float(min(0.4 * sr, 5000 + 4000 * b)),
            metal_pitch=float(rng.uniform(0.85, 1.2)),
            tom_pitch=float(rng.uniform(90, 150)),
        )
        sounds = drum_sounds(kit, sr, b, rng, voices={voice for _, voice, _ in score.hits})
        for onset, voice, vel in score.hits:
            start = int(round(onset * sr))
            if start >= n:
                continue
            x = sounds[voice]
            end = min(n, start + len(x))
            drums[start:end] += vel * x[: end - start]

    # --- bus processing ---
    lead = _lowpass(lead, 1.4 * cutoff_hz(b), sr)
    if plan.lead == "overdrive_lead":
        lead = np.tanh(3.0 * lead / (np.max(np.abs(lead)) + 1e-9))
    if genre.drive > 0:
        drive = genre.drive * (0.6 + 0.6 * plan.energy)
        comp = np.tanh(drive * comp / (np.max(np.abs(comp)) + 1e-9))
        comp = _lowpass(_highpass(comp, 90.0, sr), min(cutoff_hz(b), 5500.0), sr, order=4)  # the cabinet
    else:
        comp = _lowpass(comp, cutoff_hz(b), sr)
    bass = _lowpass(bass, 250.0 + 1500.0 * b, sr)
    if genre.sidechain > 0 and score.kick_times:
        t = np.arange(n) / sr
        duck = np.ones(n)
        for k in score.kick_times:
            start = int(k * sr)
            if start < n:
                seg = t[start:] - k
                duck[start:] = np.minimum(duck[start:], 1.0 - genre.sidechain * np.exp(-seg / 0.09))
        comp *= duck
        bass *= duck

    # --- balance: every bus at unit loudness, then the genre's mix ---
    mix = np.zeros(n)
    for bus, gain in zip((lead, comp, bass, drums), genre.mix, strict=True):
        level = _rms(bus[offset : offset + n_clip])
        if gain > 0 and level > 1e-9:
            mix += gain * bus / level
    send = (lead / (_rms(lead) + 1e-9)) * genre.mix[0] + 0.7 * (comp / (_rms(comp) + 1e-9)) * genre.mix[1]
    # single precision halves the cost of the longest convolution and is plenty for a reverb tail
    ir = _reverb_ir(plan.room, b, sr, rng).astype(np.float32)
    wet = signal.fftconvolve(send.astype(np.float32), ir)[:n].astype(np.float64)
    mix = (1.0 - plan.reverb) * mix + plan.reverb * wet * (_rms(mix) / (_rms(wet) + 1e-9))

    # --- master: loudness follows energy; soft clipping keeps peaks below full scale ---
    clip = mix[offset : offset + n_clip]
    target = 10.0 ** ((-26.0 + 16.0 * plan.energy) / 20.0)
    clip = clip * (target / (_rms(clip) + 1e-12))
    clip = 0.95 * np.tanh(clip / 0.95)
    fade_in, fade_out = int(0.01 * sr), int(0.05 * sr)
    clip[:fade_in] *= np.linspace(0.0, 1.0, fade_in)
    clip[-fade_out:] *= np.linspace(1.0, 0.0, fade_out)
    return clip.astype(np.float32)

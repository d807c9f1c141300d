"""The synthetic clips: deterministic, well-formed, and the latent attributes are audible.

Score-level checks (notes on the mode's scale, melody around its register, rhythmic
density) are exact; audio-level checks compare renders of one plan that differ in a
single attribute, and a genre classifier on generic spectral statistics runs on clips
decoded from the generated files.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import librosa
import numpy as np
import polars as pl
import pytest
import soundfile as sf

from audiorec.data.synthetic import GENRE_NAMES, GENRES, SyntheticSettings
from audiorec.data.synthetic.catalog import build_catalog
from audiorec.data.synthetic.composition import TrackPlan, compose
from audiorec.data.synthetic.music import MODES
from audiorec.data.synthetic.render import render_track
from genre_probe import held_out_artist_accuracy

SR = 22050


def plan_for(genre: str, **changes: object) -> TrackPlan:
    """A mid-range plan of the genre (first palette entries, mean attributes)."""
    g = GENRES[genre]
    plan = TrackPlan(
        track_id="A" * 16, index=0, genre=genre, tempo=float(np.mean(g.tempo)), meter=max(g.meters, key=g.meters.get),
        swing=float(np.mean(g.swing)), density=g.density[0], register=float(np.mean(g.register)),
        brightness=g.brightness[0], energy=g.energy[0], key=2, mode=max(g.modes, key=g.modes.get), progression=0,
        lead=g.leads[0], comp=g.comps[0], bass=g.basses[0], drums=0, reverb=float(np.mean(g.reverb)),
        room=float(np.mean(g.room)),
    )
    return dataclasses.replace(plan, **changes)


@pytest.mark.parametrize("genre", GENRE_NAMES)
def test_render_is_deterministic_and_well_formed(genre: str) -> None:
    plan = plan_for(genre)
    a = render_track(plan, 3.0, SR, seed=0)
    b = render_track(plan, 3.0, SR, seed=0)
    assert a.dtype == np.float32 and a.shape == (3 * SR,)
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).all() and np.abs(a).max() < 1.0
    assert np.sqrt(np.mean(a**2)) > 0.02  # audible, not silence
    assert not np.array_equal(a, render_track(plan, 3.0, SR, seed=1))


@pytest.mark.parametrize("genre", GENRE_NAMES)
def test_score_follows_mode_register_and_density(genre: str) -> None:
    plan = plan_for(genre)
    score = compose(plan, 10.0, np.random.default_rng(0))
    lead = score.parts["lead"]
    scale_pcs = {(plan.key + step) % 12 for step in MODES[plan.mode]}
    assert {m % 12 for _, _, m, _ in lead} <= scale_pcs  # the melody stays in key and mode
    comp_pcs = {m % 12 for _, _, m, _ in score.parts["comp"]}
    assert comp_pcs <= scale_pcs | {(plan.key + 7 + s) % 12 for s in MODES[plan.mode]}  # power chords' fifths
    pitches = np.array([m for _, _, m, _ in lead])
    assert abs(np.median(pitches) - plan.register) <= 7
    bars = 10.0 / (60.0 / plan.tempo * plan.meter)
    per_beat = len(lead) / (bars * plan.meter)
    style = GENRES[genre].melody_style
    if style in ("vocal", "lyrical", "riff", "bebop"):  # free rhythms: about `density` notes a beat
        assert 0.3 * plan.density < per_beat < 2.0 * plan.density + 0.5, per_beat


def test_busier_plans_have_more_notes() -> None:
    sparse = compose(plan_for("pop", density=0.8), 10.0, np.random.default_rng(0))
    busy = compose(plan_for("pop", density=2.6), 10.0, np.random.default_rng(0))
    assert len(busy.parts["lead"]) > 1.6 * len(sparse.parts["lead"])


def _centroid(y: np.ndarray) -> float:
    return float(librosa.feature.spectral_centroid(y=y, sr=SR).mean())


@pytest.mark.parametrize("genre", ["rock", "pop", "classical", "ambient"])
def test_brightness_raises_the_spectral_centroid(genre: str) -> None:
    dark = render_track(plan_for(genre, brightness=0.2), 4.0, SR, seed=0)
    bright = render_track(plan_for(genre, brightness=0.85), 4.0, SR, seed=0)
    assert _centroid(bright) > 1.25 * _centroid(dark)


@pytest.mark.parametrize(("genre", "tempo"), [("rock", 104.0), ("rock", 138.0), ("electronic", 124.0), ("hiphop", 88.0)])
def test_tempo_is_what_a_beat_tracker_hears(genre: str, tempo: float) -> None:
    y = render_track(plan_for(genre, tempo=tempo), 10.0, SR, seed=0)
    onset = librosa.onset.onset_strength(y=y, sr=SR)
    estimate = float(librosa.feature.tempo(onset_envelope=onset, sr=SR, start_bpm=tempo)[0])
    ratios = np.abs(np.log2(estimate / tempo) - np.array([-1.0, 0.0, 1.0]))
    assert ratios.min() < 0.05, (estimate, tempo)


def test_higher_register_raises_the_melody() -> None:
    low = compose(plan_for("pop", register=60.0), 10.0, np.random.default_rng(0)).parts["lead"]
    high = compose(plan_for("pop", register=74.0), 10.0, np.random.default_rng(0)).parts["lead"]
    assert np.mean([m for *_, m, _ in high]) - np.mean([m for *_, m, _ in low]) > 9


def test_tonal_clips_sit_on_their_scale() -> None:
    """Chroma of drum-free clips puts most energy on the seven pitch classes of the mode."""
    for genre, key in (("classical", 0), ("classical", 7), ("ambient", 3), ("ambient", 10)):
        plan = plan_for(genre, key=key)
        chroma = librosa.feature.chroma_cqt(y=render_track(plan, 6.0, SR, seed=0), sr=SR).mean(axis=1)
        scale = [(key + s) % 12 for s in MODES[plan.mode]]
        assert chroma[scale].sum() / chroma.sum() > 0.75  # 7/12 = 0.58 by chance


def _features(path: Path) -> np.ndarray:
    y, sr = sf.read(path, dtype="float32")
    mel = np.log(librosa.feature.melspectrogram(y=y, sr=sr, n_mels=40) + 1e-6)
    return np.concatenate([mel.mean(axis=1), mel.std(axis=1)])


def test_a_simple_classifier_hears_the_genre(tiny_dataset: Path) -> None:
    """Nearest centroid on log-mel mean/std of the decoded mp3s, trained on some artists of
    each genre and tested on the others (so it must hear the genre, not the artist)."""
    info = pl.read_csv(tiny_dataset / "id_information.tsv", separator="\t")
    genres = pl.read_csv(tiny_dataset / "id_genres.tsv", separator="\t").join(info.select("id", "artist"), on="id")
    x = np.stack([_features(tiny_dataset / "audios" / f"{tid}.mp3") for tid in genres["id"]])
    labels = np.array([GENRE_NAMES.index(g) for g in genres["genre"]])
    accuracy, majority, held_out = held_out_artist_accuracy(x, labels, genres["artist"].to_numpy())
    assert len(held_out) >= 20 and len(np.unique(held_out)) >= 5
    assert accuracy > 0.6 and accuracy > majority + 0.25, (accuracy, majority)


def test_catalogue_tracks_of_a_genre_differ() -> None:
    catalog = build_catalog(SyntheticSettings(n_tracks=200, n_users=1))
    for genre in GENRE_NAMES:
        plans = [p for p in catalog.plans if p.genre == genre]
        if len(plans) < 3:
            continue
        tempos = {p.tempo for p in plans}
        assert len(tempos) > len(plans) // 2  # per-track variation, not copies
        lo, hi = GENRES[genre].tempo
        assert all(lo <= p.tempo <= hi for p in plans)

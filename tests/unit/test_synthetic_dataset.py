"""A generated dataset end to end: the Music4All-Onion layout, decodable clips of the
stated length and rate, identical output for any number of workers, selectable formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf

from audiorec.data.synthetic import generate_dataset
from audiorec.data.synthetic.dataset import AUDIO_DIR, GENRES_NAME, LOG_NAME
from tests.conftest import TINY_SYNTHETIC

SMALL = {"n_tracks": 12, "n_users": 8, "events_per_user": 20, "clip_seconds": 2.0, "seed": 11}


def test_every_logged_track_has_a_clip_of_the_stated_length_and_rate(tiny_dataset: Path) -> None:
    log = pl.read_csv(tiny_dataset / LOG_NAME, separator="\t", try_parse_dates=True)
    genres = pl.read_csv(tiny_dataset / GENRES_NAME, separator="\t")
    clips = sorted((tiny_dataset / AUDIO_DIR).iterdir())
    assert [p.suffix for p in clips] == [".mp3"] * len(clips)
    assert {p.stem for p in clips} == set(genres["id"])  # every track has a clip, listened or not
    assert set(log["track_id"].unique()) <= {p.stem for p in clips}
    expected = int(TINY_SYNTHETIC["clip_seconds"] * 22050)
    for path in clips:
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.frames) == (22050, 1, expected), path.name
        samples, rate = sf.read(path, dtype="float32")
        assert rate == 22050 and samples.shape == (expected,)
        assert np.isfinite(samples).all() and 0.01 < np.sqrt(np.mean(samples**2)) < 0.7
    leftovers = [p.name for p in tiny_dataset.iterdir() if p.name.startswith(".")]
    assert not leftovers, f"temporary files left behind: {leftovers}"


def test_workers_do_not_change_a_byte(tmp_path: Path) -> None:
    generate_dataset(SMALL, tmp_path / "one", threads=1)
    generate_dataset(SMALL, tmp_path / "two", threads=2)
    one, two = tmp_path / "one", tmp_path / "two"
    assert (one / LOG_NAME).read_bytes() == (two / LOG_NAME).read_bytes()
    names = sorted(p.name for p in (one / AUDIO_DIR).iterdir())
    assert names == sorted(p.name for p in (two / AUDIO_DIR).iterdir()) and len(names) == SMALL["n_tracks"]
    for name in names:
        a, _ = sf.read(one / AUDIO_DIR / name, dtype="float32")
        b, _ = sf.read(two / AUDIO_DIR / name, dtype="float32")
        np.testing.assert_array_equal(a, b)
        assert (one / AUDIO_DIR / name).read_bytes() == (two / AUDIO_DIR / name).read_bytes()


@pytest.mark.parametrize("audio_format", ["wav", "flac"])
def test_lossless_formats_hold_the_same_samples(tmp_path: Path, audio_format: str) -> None:
    small = {**SMALL, "n_tracks": 10, "n_users": 2}
    generate_dataset({**small, "audio_format": audio_format}, tmp_path / audio_format, threads=1)
    generate_dataset({**small, "audio_format": "wav"}, tmp_path / "reference", threads=1)
    clips = sorted((tmp_path / audio_format / AUDIO_DIR).iterdir())
    assert [p.suffix for p in clips] == [f".{audio_format}"] * small["n_tracks"]
    for path in clips:
        a, rate = sf.read(path, dtype="int16")
        b, _ = sf.read(tmp_path / "reference" / AUDIO_DIR / f"{path.stem}.wav", dtype="int16")
        assert rate == 22050
        np.testing.assert_array_equal(a, b)


def test_regenerating_replaces_the_folder(tmp_path: Path) -> None:
    small = {**SMALL, "n_tracks": 10, "n_users": 2, "audio_format": "wav"}
    generate_dataset(small, tmp_path, threads=1)
    (tmp_path / AUDIO_DIR / "stale.wav").write_bytes(b"")
    generate_dataset({**small, "seed": 12}, tmp_path, threads=1)
    assert not (tmp_path / AUDIO_DIR / "stale.wav").exists()
    assert len(list((tmp_path / AUDIO_DIR).iterdir())) == small["n_tracks"]

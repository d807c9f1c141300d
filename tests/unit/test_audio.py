"""Probing, decoding (mono mixdown, resampling, broken files) and windowing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from audiorec.audio import AudioError, decode, plan_windows, probe
from audiorec.audio.windows import Window

RATE = 44100


def noise(seconds: float, channels: int = 1, seed: int = 0, rate: int = RATE) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((int(seconds * rate), channels)).astype(np.float32) * 0.1
    return x[:, 0] if channels == 1 else x


@pytest.fixture()
def clips(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for ext in ("wav", "flac", "ogg", "mp3"):
        paths[ext] = tmp_path / f"stereo.{ext}"
        sf.write(paths[ext], noise(1.0, 2), RATE)
    good = (tmp_path / "stereo.mp3").read_bytes()
    paths["truncated"] = tmp_path / "truncated.mp3"
    paths["truncated"].write_bytes(good[: len(good) // 2])
    corrupt = bytearray(good)  # the middle half overwritten with noise: the decoder gives up
    a, b = len(good) // 4, 3 * len(good) // 4
    corrupt[a:b] = np.random.default_rng(1).integers(0, 256, b - a, dtype=np.uint8).tobytes()
    paths["corrupt"] = tmp_path / "corrupt.mp3"
    paths["corrupt"].write_bytes(bytes(corrupt))
    paths["garbage"] = tmp_path / "garbage.mp3"
    paths["garbage"].write_bytes(np.random.default_rng(2).bytes(4000))
    paths["empty"] = tmp_path / "empty.wav"
    paths["empty"].write_bytes(b"")
    paths["missing"] = tmp_path / "missing.wav"
    return paths


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
def test_probe_reads_header(clips: dict[str, Path], ext: str) -> None:
    res = probe(clips[ext])
    assert res.status == "ok" and res.reason == ""
    assert (res.sample_rate, res.channels) == (RATE, 2)
    assert res.duration == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize(
    ("case", "status", "words"),
    [
        ("missing", "missing", "not found"),
        ("empty", "empty", "0 bytes"),
        ("garbage", "unreadable", "not a decodable audio file"),
    ],
)
def test_probe_reports_broken_files(clips: dict[str, Path], case: str, status: str, words: str) -> None:
    res = probe(clips[case])
    assert res.status == status
    assert words in res.reason
    assert res.duration is None


def test_decode_mixes_down_to_mono_and_resamples_with_soxr(clips: dict[str, Path]) -> None:
    stereo, rate = sf.read(clips["wav"], dtype="float32")
    out = decode(clips["wav"], 16000)
    expected = soxr.resample(stereo.mean(axis=1), rate, 16000, quality="HQ")
    assert out.dtype == np.float32 and out.ndim == 1
    assert out.shape[0] == 16000
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_decode_keeps_the_native_rate_untouched(clips: dict[str, Path]) -> None:
    stereo, _ = sf.read(clips["flac"], dtype="float32")
    np.testing.assert_array_equal(decode(clips["flac"], RATE), stereo.mean(axis=1, dtype=np.float32))


def test_decode_detects_a_truncated_mp3(clips: dict[str, Path]) -> None:
    frames = probe(clips["truncated"]).frames  # the header still announces the full clip
    with pytest.raises(AudioError, match="truncated"):
        decode(clips["truncated"], 22050, expected_frames=frames)


@pytest.mark.parametrize(
    ("case", "words"),
    [("corrupt", "corrupt"), ("garbage", "not a decodable"), ("empty", "0 bytes"), ("missing", "not found")],
)
def test_decode_turns_broken_files_into_audio_errors(clips: dict[str, Path], case: str, words: str) -> None:
    with pytest.raises(AudioError, match=words):
        decode(clips[case], 22050, expected_frames=RATE)


def test_windows_whole_clip_when_no_limit() -> None:
    assert plan_windows(1000, 100, None) == [Window(0, 1000, 1000)]


def test_windows_pad_a_short_clip_up_to_the_minimum() -> None:
    # 0.5 s at 100 Hz with a 3 s minimum: one window of 50 real samples, padded to 300
    assert plan_windows(50, 100, 10.0, 3.0) == [Window(0, 50, 300)]


def test_windows_cut_long_clips_and_keep_a_long_enough_remainder() -> None:
    assert plan_windows(2500, 100, 10.0, 3.0) == [
        Window(0, 1000, 1000),
        Window(1000, 2000, 1000),
        Window(2000, 2500, 500),
    ]


def test_windows_drop_a_remainder_shorter_than_the_minimum() -> None:
    assert plan_windows(2100, 100, 10.0, 3.0) == [Window(0, 1000, 1000), Window(1000, 2000, 1000)]


def test_windows_cover_exact_multiples_without_an_empty_tail() -> None:
    assert plan_windows(2000, 100, 10.0, 0.0) == [Window(0, 1000, 1000), Window(1000, 2000, 1000)]
    assert plan_windows(0, 100, 10.0) == []

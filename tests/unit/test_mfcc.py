"""MFCC statistics against librosa itself, through the engine; silence; the dataset's table."""

from __future__ import annotations

import bz2
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from audiorec.backends import build_backend
from audiorec.backends.base import BackendError
from audiorec.backends.mfcc import MFCCBackend
from audiorec.extraction.device import plan_run
from audiorec.extraction.engine import Extractor
from audiorec.extraction.records import TrackRef

SR = 22050


def librosa_stats(y: np.ndarray, sr: int = SR) -> np.ndarray:
    """The reference: librosa.feature.mfcc with its defaults, numpy mean, np.cov, upper triangle."""
    m = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13)
    rows, cols = np.triu_indices(13)
    return np.concatenate([m.mean(axis=1), np.cov(m)[rows, cols]])


def loaded(spec: dict | None = None) -> MFCCBackend:
    backend = MFCCBackend({"type": "mfcc", **(spec or {})})
    backend.load(torch.device("cpu"))
    return backend


def embed(backend: MFCCBackend, clips: list[np.ndarray]) -> np.ndarray:
    width = max(len(c) for c in clips)
    waves = np.zeros((len(clips), width), dtype=np.float32)
    for i, c in enumerate(clips):
        waves[i, : len(c)] = c
    out = backend.embed_batch(torch.from_numpy(waves), torch.tensor([len(c) for c in clips]))
    return out.means[:, 0].numpy()


def music_like(seconds: float, seed: int, sr: int = SR) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    tones = sum(
        np.sin(2 * np.pi * f * t) * a for f, a in zip(rng.uniform(80, 4000, 5), rng.uniform(0.05, 0.2, 5), strict=True)
    )
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t)
    return ((tones + 0.02 * rng.standard_normal(t.size)) * envelope).astype(np.float32)


def test_dimensions_and_registry() -> None:
    backend = build_backend({"type": "mfcc"})
    assert isinstance(backend, MFCCBackend)
    assert backend.layer_dims == [104] and backend.embedding_dim == 104
    assert backend.sample_rate == 22050 and backend.window_seconds is None
    assert not backend.has_weights


def test_matches_librosa_on_a_batch_of_different_lengths() -> None:
    clips = [music_like(3.0, 0), music_like(1.3, 1), music_like(0.4, 2)]
    got = embed(loaded(), clips)
    for i, clip in enumerate(clips):
        ref = librosa_stats(clip)
        np.testing.assert_allclose(got[i], ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max())


def test_batching_does_not_change_the_vectors() -> None:
    backend = loaded()
    clips = [music_like(2.0, s) for s in range(3)] + [music_like(0.7, 9)]
    together = embed(backend, clips)
    alone = np.concatenate([embed(backend, [c]) for c in clips])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-3)


def test_the_batched_path_taken_on_gpus_gives_the_same_vectors() -> None:
    backend = loaded()
    clips = [music_like(2.0, 0), music_like(0.6, 1), music_like(0.01, 2)]
    width = max(c.size for c in clips)
    waves = torch.zeros(len(clips), width)
    for i, c in enumerate(clips):
        waves[i, : c.size] = torch.from_numpy(c)
    lengths = torch.tensor([c.size for c in clips])
    n_frames = torch.clamp(1 + lengths // backend.hop_length, min=2)
    batched = backend._stats(waves, n_frames).numpy()
    np.testing.assert_allclose(batched, embed(backend, clips), rtol=1e-5, atol=1e-3)


def test_through_the_engine_a_44k_stereo_mp3_matches_librosa_load(tmp_path: Path) -> None:
    stereo = np.stack([music_like(2.5, 3, 44100), music_like(2.5, 4, 44100)], axis=1) * 0.5
    path = tmp_path / "clip.mp3"
    sf.write(path, stereo, 44100)
    backend = build_backend({"type": "mfcc", "batch_size": 2})
    with Extractor(backend, plan_run(1, "cpu"), batch_size=2) as ex:
        result = ex.run([TrackRef("clip", str(path))])
    assert result.track_ids == ["clip"] and not result.failures
    y, _ = librosa.load(path, sr=SR)  # mono mixdown, soxr_hq resampling: librosa's defaults
    ref = librosa_stats(y)
    np.testing.assert_allclose(result.layers[0, 0], ref, rtol=1e-4, atol=1e-3)


def test_silence_gives_the_documented_finite_vector() -> None:
    got = embed(loaded(), [np.zeros(SR, dtype=np.float32)])[0]
    assert np.isfinite(got).all()
    assert got[0] == pytest.approx(-100 * np.sqrt(128), rel=1e-5)
    np.testing.assert_allclose(got[1:], 0.0, atol=1e-2)
    np.testing.assert_allclose(got, librosa_stats(np.zeros(SR, dtype=np.float32)), atol=1e-2)


def test_a_clip_shorter_than_a_hop_still_has_a_covariance() -> None:
    backend = loaded()
    clip = music_like(0.004, 5)  # 88 samples: one frame, padded by the engine to two
    padded = np.zeros(int(np.ceil(backend.min_seconds * SR)), dtype=np.float32)
    padded[: clip.size] = clip
    waves = torch.from_numpy(padded[None])
    out = backend.embed_batch(waves, torch.tensor([clip.size]))
    assert out.frames.tolist() == [2]
    assert np.isfinite(out.means.numpy()).all()
    np.testing.assert_allclose(out.means[0, 0].numpy(), librosa_stats(padded), rtol=1e-4, atol=1e-2)


def write_stats(path: Path, ids: list[str], values: np.ndarray, compress: bool = False) -> None:
    header = "id\t" + "\t".join(f"v{i}" for i in range(values.shape[1]))
    lines = [header] + [f"{t}\t" + "\t".join(f"{v:.6g}" for v in row) for t, row in zip(ids, values, strict=True)]
    data = ("\n".join(lines) + "\n").encode()
    if compress:
        path.with_name(path.name + ".bz2").write_bytes(bz2.compress(data))
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("compress", [False, True])
def test_source_dataset_reads_the_onion_table(tmp_path: Path, compress: bool) -> None:
    values = np.random.default_rng(0).standard_normal((2, 104)).astype(np.float32)
    write_stats(tmp_path / "id_mfcc_stats.tsv", ["0009fFIM1eYThaPg", "00AeAaSNbe92PRrb"], values, compress)
    backend = build_backend({"type": "mfcc", "source": "dataset"})
    assert not backend.needs_audio
    with Extractor(backend, plan_run(1, "cpu"), dataset_dir=tmp_path) as ex:
        result = ex.run([TrackRef("00AeAaSNbe92PRrb", ""), TrackRef("nope", ""), TrackRef("0009fFIM1eYThaPg", "")])
    assert result.track_ids == ["00AeAaSNbe92PRrb", "0009fFIM1eYThaPg"]
    np.testing.assert_allclose(result.layers[:, 0], values[[1, 0]], rtol=1e-5)
    assert [(f.track_id, f.stage) for f in result.failures] == [("nope", "source")]
    assert "id_mfcc_stats.tsv" in result.failures[0].reason


def test_source_dataset_errors_name_the_file_and_the_fix(tmp_path: Path) -> None:
    backend = build_backend({"type": "mfcc", "source": "dataset"})
    with pytest.raises(BackendError, match="no id_mfcc_stats.tsv or id_mfcc_stats.tsv.bz2"):
        backend.compute(tmp_path, ["a"])
    write_stats(tmp_path / "id_mfcc_stats.tsv", ["a"], np.zeros((1, 20)))
    with pytest.raises(BackendError, match="has 20 value columns besides `id`; expected 104"):
        backend.compute(tmp_path, ["a"])


def test_mfcc_statistics_separate_timbres() -> None:
    """Vectors carry timbre: nearest class centroid (fit on half) recognises three synthetic
    'instruments' with random pitch and loudness far above chance (1/3)."""
    rng = np.random.default_rng(0)
    t = np.arange(int(1.0 * SR)) / SR

    def clip(kind: int) -> np.ndarray:
        f0, gain = rng.uniform(110, 440), rng.uniform(0.05, 0.5)
        if kind == 0:  # pure-ish tone
            y = np.sin(2 * np.pi * f0 * t)
        elif kind == 1:  # bright sawtooth
            y = 2 * ((f0 * t) % 1.0) - 1
        else:  # noise bursts
            y = rng.standard_normal(t.size) * (np.sin(2 * np.pi * 4 * t) > 0)
        return (gain * y).astype(np.float32)

    labels = np.repeat(np.arange(3), 12)
    rng.shuffle(labels)
    x = embed(loaded(), [clip(k) for k in labels])
    x = (x - x.mean(0)) / (x.std(0) + 1e-9)
    train, test = np.arange(0, 36, 2), np.arange(1, 36, 2)
    centroids = np.stack([x[train][labels[train] == k].mean(0) for k in range(3)])
    predicted = np.argmin(((x[test][:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    assert (predicted == labels[test]).mean() >= 0.9


def test_source_dataset_through_shard_and_gather_needs_no_audio(tmp_path: Path) -> None:
    from audiorec.extraction import jobs
    from audiorec.extraction.store import read_embeddings

    (tmp_path / "audios").mkdir()
    sf.write(tmp_path / "audios" / "a.wav", music_like(0.5, 0), SR)
    log = tmp_path / "userid_trackid_timestamp.tsv"
    log.write_text("user_id\ttrack_id\ttimestamp\n" + "".join(f"u\t{t}\t2020-01-01 00:00:00\n" for t in "abc"))
    values = np.random.default_rng(0).standard_normal((2, 104))
    write_stats(tmp_path / "id_mfcc_stats.tsv", ["a", "b"], values, compress=True)
    jobs.make_tracks(tmp_path / "audios", log, tmp_path / "tracks.parquet")
    spec = {"type": "mfcc", "source": "dataset", "max_fail_share": 0.5}
    for i in range(2):
        jobs.embed_shard(spec, tmp_path / "tracks.parquet", tmp_path / f"s{i}.h5", i, 2, dataset_dir=tmp_path)
    jobs.embed_gather(
        spec,
        [tmp_path / "s0.h5", tmp_path / "s1.h5"],
        tmp_path / "tracks.parquet",
        tmp_path / "e.h5",
        tmp_path / "f.csv",
    )
    ids, emb = read_embeddings(tmp_path / "e.h5")
    assert ids == ["a", "b"]  # b has no audio file, but the table has its vector
    np.testing.assert_allclose(emb, values, rtol=1e-5)
    assert (tmp_path / "f.csv").read_text().splitlines()[1:] == ['c,"",not in id_mfcc_stats.tsv.bz2,source']

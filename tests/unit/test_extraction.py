"""The extraction engine with a tiny frame-wise torch backend defined here: windowing and
pooling, padding-aware means, resampling, batching invariance, sharding + gather, resume
after a kill, every bad-audio case, the failure-share threshold, decode-worker crashes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import pytest
import soundfile as sf
import soxr
import torch

from audiorec.backends import registry
from audiorec.backends.base import Backend, BackendError, LayerMeans
from audiorec.extraction import jobs
from audiorec.extraction.decoding import Decoded, DecodePool, decode_ref
from audiorec.extraction.device import plan_run
from audiorec.extraction.engine import Extractor, TooManyFailures
from audiorec.extraction.records import TrackRef
from audiorec.extraction.shards import resume_dir, shard_bounds
from audiorec.extraction.store import read_attrs, read_embeddings, read_failures, read_layers, read_silent

HOP = 100  # samples per frame of the dummy backend


class FrameStats(Backend):
    """Frame-wise features (mean, power, mean |diff| of each 100-sample frame) and a seeded
    Linear+tanh of them: a model whose per-window means pool exactly into a one-pass mean."""

    type_name: ClassVar[str] = "framestats"
    has_weights: ClassVar[bool] = False

    @property
    def sample_rate(self) -> int:
        return int(self.spec.get("rate", 8000))

    @property
    def window_seconds(self) -> float | None:
        return self.spec.get("window", 0.5)

    @property
    def min_seconds(self) -> float:
        return float(self.spec.get("min", 0.1))

    @property
    def layer_names(self) -> list[str]:
        return ["stats", "proj"]

    @property
    def layer_dims(self) -> list[int]:
        return [3, 2]

    def load(self, device: Any, precision: str = "fp32") -> None:
        torch.manual_seed(0)
        self.proj = torch.nn.Linear(3, 2).to(device)
        self.loaded_with = (device, precision)

    def features(self, waves: torch.Tensor) -> torch.Tensor:
        b, t = waves.shape
        frames = waves[:, : (t // HOP) * HOP].reshape(b, t // HOP, HOP)
        return torch.stack([frames.mean(-1), frames.square().mean(-1), frames.diff(dim=-1).abs().mean(-1)], -1)

    def embed_batch(self, waves: Any, lengths: Any) -> LayerMeans:
        feats = self.features(waves)
        proj = torch.tanh(self.proj(feats))
        n = torch.div(lengths, HOP, rounding_mode="floor")
        mask = (torch.arange(feats.shape[1])[None, :] < n[:, None]).float()[..., None]
        denom = n.clamp(min=1).float()[:, None]
        means = torch.zeros(waves.shape[0], 2, 3)
        means[:, 0] = (feats * mask).sum(1) / denom
        means[:, 1, :2] = (proj.float() * mask).sum(1) / denom
        return LayerMeans(means=means, frames=n)


def reference(backend: FrameStats, audio: np.ndarray) -> np.ndarray:
    """One pass over the whole clip, numpy only: what windowed pooling must reproduce."""
    n = audio.size // HOP
    frames = audio[: n * HOP].reshape(n, HOP).astype(np.float64)
    feats = np.stack([frames.mean(1), (frames**2).mean(1), np.abs(np.diff(frames, axis=1)).mean(1)], 1)
    w = backend.proj.weight.detach().numpy().astype(np.float64)
    bias = backend.proj.bias.detach().numpy().astype(np.float64)
    out = np.zeros((2, 3))
    out[0] = feats.mean(0)
    out[1, :2] = np.tanh(feats @ w.T + bias).mean(0)
    return out


def tone(seconds: float, rate: int = 8000, seed: int = 0, channels: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate))) / rate
    y = np.sin(2 * np.pi * rng.uniform(100, 1500) * t) * rng.uniform(0.1, 0.6) + 0.05 * rng.standard_normal(t.size)
    y = y.astype(np.float32)
    return np.stack([y, y * 0.5], 1) if channels == 2 else y


def extractor(backend: Backend | None = None, batch_size: int = 4, workers: int = 0, **kw: Any) -> Extractor:
    return Extractor(backend or FrameStats({}), plan_run(1, "cpu", num_workers=workers), batch_size=batch_size, **kw)


def write_clips(folder: Path, seconds: dict[str, float], rate: int = 8000) -> list[TrackRef]:
    folder.mkdir(parents=True, exist_ok=True)
    refs = []
    for i, (name, sec) in enumerate(seconds.items()):
        path = folder / f"{name}.wav"
        sf.write(path, tone(sec, rate, seed=i), rate, subtype="FLOAT")
        refs.append(TrackRef(name, str(path)))
    return refs


# --- windowing, padding, resampling, batching ---


def test_windowed_pooling_equals_one_pass_over_the_clip(tmp_path: Path) -> None:
    # 1.23 s: windows of 0.5 + 0.5 + 0.23 s; 1.05 s: the 0.05 s remainder (< min 0.1 s) is dropped
    refs = write_clips(tmp_path, {"long": 1.23, "drop": 1.05, "one": 0.4})
    with extractor() as ex:
        result = ex.run(refs)
    assert result.track_ids == ["long", "drop", "one"] and not result.failures
    backend = ex.backend
    for i, (ref, keep) in enumerate(zip(refs, [9840, 8000, 3200], strict=True)):
        audio = sf.read(ref.path, dtype="float32")[0][:keep]
        np.testing.assert_allclose(result.layers[i], reference(backend, audio), rtol=1e-5, atol=1e-6)


def test_short_clips_are_padded_but_averaged_over_their_real_frames_only(tmp_path: Path) -> None:
    refs = write_clips(tmp_path, {"short": 0.03})  # 240 samples: 2 real frames, padded to 800 samples
    seen = []
    backend = FrameStats({})
    original = backend.embed_batch

    def spy(waves: Any, lengths: Any) -> LayerMeans:
        seen.append((tuple(waves.shape), lengths.tolist()))
        return original(waves, lengths)

    backend.embed_batch = spy  # type: ignore[method-assign]
    with extractor(backend) as ex:
        result = ex.run(refs)
    assert seen == [((1, 800), [240])]
    audio = sf.read(refs[0].path, dtype="float32")[0]
    np.testing.assert_allclose(result.layers[0], reference(backend, audio), rtol=1e-5, atol=1e-6)


def test_audio_is_mixed_down_and_resampled_to_the_backend_rate(tmp_path: Path) -> None:
    stereo = tone(0.9, 44100, channels=2)
    path = tmp_path / "hi.flac"
    sf.write(path, stereo, 44100, subtype="PCM_24")
    backend = FrameStats({"rate": 16000})
    with extractor(backend) as ex:
        result = ex.run([TrackRef("hi", str(path))])
    decoded = sf.read(path, dtype="float32")[0].mean(axis=1)
    expected = soxr.resample(decoded, 44100, 16000, quality="HQ")
    assert expected.size == 14400
    np.testing.assert_allclose(result.layers[0], reference(backend, expected[:14400]), rtol=1e-5, atol=1e-6)


def test_batch_size_does_not_change_the_vectors(tmp_path: Path) -> None:
    refs = write_clips(tmp_path, {f"t{i}": s for i, s in enumerate([0.3, 1.3, 0.05, 0.75, 2.0, 0.5])})
    runs = []
    for batch_size, workers in [(1, 0), (4, 2), (7, 0)]:
        with extractor(batch_size=batch_size, workers=workers) as ex:
            runs.append(ex.run(refs))
    for other in runs[1:]:
        assert other.track_ids == runs[0].track_ids
        np.testing.assert_allclose(other.layers, runs[0].layers, rtol=1e-6, atol=1e-7)


def test_cpu_mixed_precision_runs_the_model_under_autocast(tmp_path: Path) -> None:
    refs = write_clips(tmp_path, {"a": 0.6, "b": 0.2})
    with extractor() as ex:
        fp32 = ex.run(refs)
    backend = FrameStats({})
    with Extractor(backend, plan_run(1, "cpu", "bf16", 0), batch_size=2) as ex:
        bf16 = ex.run(refs)
    assert backend.loaded_with[1] == "bf16"
    assert bf16.layers.dtype == np.float32 and np.isfinite(bf16.layers).all()
    np.testing.assert_allclose(bf16.layers, fp32.layers, atol=3e-2)
    assert not np.array_equal(bf16.layers[:, 1], fp32.layers[:, 1])  # the Linear really ran in bf16


def test_mfcc_keeps_its_spectrogram_in_fp32_under_autocast(tmp_path: Path) -> None:
    refs = write_clips(tmp_path, {"a": 0.6, "b": 0.2}, rate=22050)
    out = []
    for precision in ("fp32", "bf16"):
        backend = registry.build_backend({"type": "mfcc"})
        with Extractor(backend, plan_run(1, "cpu", precision, 0), batch_size=2) as ex:
            out.append(ex.run(refs).layers)
    np.testing.assert_array_equal(out[0], out[1])


# --- bad audio ---


class Fragile(FrameStats):
    """Raises on a clip whose first sample is exactly 0.25; returns NaN for one at -0.25."""

    def embed_batch(self, waves: Any, lengths: Any) -> LayerMeans:
        if bool((waves[:, 0] == 0.25).any()):
            raise ValueError("cannot embed this one")
        out = super().embed_batch(waves, lengths)
        out.means[waves[:, 0] == -0.25] = float("nan")
        return out


def test_a_backend_error_or_nan_fails_only_that_track(tmp_path: Path) -> None:
    refs = write_clips(tmp_path, {"a": 0.3, "b": 0.3, "c": 0.3, "d": 0.3})
    for name, first in (("b", 0.25), ("d", -0.25)):
        audio = sf.read(tmp_path / f"{name}.wav", dtype="float32")[0]
        audio[0] = first
        sf.write(tmp_path / f"{name}.wav", audio, 8000, subtype="FLOAT")
    with extractor(Fragile({}), batch_size=4) as ex:
        result = ex.run(refs)
    assert result.track_ids == ["a", "c"]
    assert np.isfinite(result.layers).all()
    reasons = {f.track_id: (f.stage, f.reason) for f in result.failures}
    assert reasons["b"] == ("embed", "backend error: ValueError: cannot embed this one")
    assert reasons["d"] == ("embed", "backend returned non-finite values (NaN/inf)")


def make_bad_dataset(root: Path) -> Path:
    """good clips plus every kind of bad audio, and a listening log naming a track without audio."""
    audios = root / "audios"
    audios.mkdir(parents=True)
    for i in range(4):
        sf.write(audios / f"good{i}.wav", tone(0.7, 8000, seed=i), 8000)
    sf.write(audios / "good4.mp3", tone(1.0, 22050, seed=7), 22050)
    whole = (audios / "good4.mp3").read_bytes()
    (audios / "truncated.mp3").write_bytes(whole[: len(whole) // 2])
    corrupt = bytearray(whole)
    a, b = len(whole) // 4, 3 * len(whole) // 4
    corrupt[a:b] = np.random.default_rng(1).integers(0, 256, b - a, dtype=np.uint8).tobytes()
    (audios / "corrupt.mp3").write_bytes(bytes(corrupt))
    (audios / "garbage.ogg").write_bytes(np.random.default_rng(2).bytes(3000))
    (audios / "empty.mp3").write_bytes(b"")
    sf.write(audios / "short.wav", tone(0.02, 8000), 8000)  # shorter than one window and than min_seconds
    sf.write(audios / "silent.flac", np.zeros(6000, dtype=np.float32), 8000)
    (audios / "notes.txt").write_text("not audio")
    log = root / "userid_trackid_timestamp.tsv"
    log.write_text("user_id\ttrack_id\ttimestamp\nu1\tgood0\t2020-01-01 10:00:00\nu2\tghost\t2020-01-02 10:00:00\n")
    return log


@pytest.fixture()
def dummy_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BACKEND_TYPES, "framestats", f"{__name__}:FrameStats")


def run_backend(tmp: Path, spec: dict[str, Any], threads: int = 1, tracks: Path | None = None) -> Path:
    """tracks -> every shard -> gather, as the workflow does; returns the .h5 path."""
    tracks = tracks or tmp / "tracks.parquet"
    n = spec.get("shards", 1)
    shards = [tmp / "emb" / f"shard{i}-of-{n}.h5" for i in range(n)]
    for i, path in enumerate(shards):
        jobs.embed_shard(spec, tracks, path, i, n, threads=threads, failures_report=tmp / "logs" / f"shard{i}.csv")
    jobs.embed_gather(spec, shards, tracks, tmp / "emb.h5", tmp / "emb.failures.csv", tmp / "logs" / "failures.csv")
    return tmp / "emb.h5"


def test_every_kind_of_bad_audio_is_recorded_never_nan_never_a_crash(tmp_path: Path, dummy_registered: None) -> None:
    log = make_bad_dataset(tmp_path / "ds")
    index = jobs.make_tracks(tmp_path / "ds" / "audios", log, tmp_path / "tracks.parquet", threads=2)
    status = dict(zip(index["track_id"], index["status"], strict=True))
    assert status == {
        "corrupt": "ok",  # its header is fine: only decoding finds the damage
        "empty": "empty",
        "garbage": "unreadable",
        "ghost": "missing",
        **{f"good{i}": "ok" for i in range(5)},
        "short": "ok",
        "silent": "ok",
        "truncated": "ok",
    }
    h5 = run_backend(tmp_path, {"type": "framestats", "max_fail_share": 0.5, "shards": 2, "batch_size": 3})
    ids, emb = read_embeddings(h5)
    assert ids == sorted([f"good{i}" for i in range(5)] + ["short", "silent"])
    assert np.isfinite(emb).all() and emb.shape == (7, 2)
    assert read_silent(h5) == ["silent"]
    failures = pl.read_csv(tmp_path / "emb.failures.csv")
    assert failures.columns == ["track_id", "path", "reason", "stage"]
    got = {r["track_id"]: (r["stage"], r["reason"]) for r in failures.iter_rows(named=True)}
    assert set(got) == {"corrupt", "empty", "garbage", "ghost", "truncated"}
    assert got["ghost"][0] == got["empty"][0] == got["garbage"][0] == "probe"
    assert got["truncated"][0] == "decode" and "truncated" in got["truncated"][1]
    assert got["corrupt"][0] == "decode" and "corrupt" in got["corrupt"][1]
    assert read_attrs(h5)["n_failures"] == 5 and read_failures(h5)[0].track_id == "corrupt"


def test_too_many_failures_fail_the_job_naming_the_failures_file(tmp_path: Path, dummy_registered: None) -> None:
    log = make_bad_dataset(tmp_path / "ds")
    jobs.make_tracks(tmp_path / "ds" / "audios", log, tmp_path / "tracks.parquet")
    spec = {"type": "framestats", "max_fail_share": 0.2}  # 12 tracks: 2 may fail, 5 do
    report = tmp_path / "logs" / "shard0.csv"
    with pytest.raises(TooManyFailures, match=str(report)) as err:
        run_backend(tmp_path, spec)
    assert "raise the backend's max_fail_share" in str(err.value)
    assert len(pl.read_csv(report)) == 3  # it stopped at the third failure
    assert not (tmp_path / "emb" / "shard0-of-1.h5").exists()


def test_the_share_is_enforced_over_all_shards_by_the_gather(tmp_path: Path, dummy_registered: None) -> None:
    log = make_bad_dataset(tmp_path / "ds")
    jobs.make_tracks(tmp_path / "ds" / "audios", log, tmp_path / "tracks.parquet")
    spec = {"type": "framestats", "max_fail_share": 4 / 12, "shards": 3}  # 4 allowed, 5 fail, none > 4 per shard
    with pytest.raises(TooManyFailures, match="5 of 12 tracks") as err:
        run_backend(tmp_path, spec)
    assert str(tmp_path / "logs" / "failures.csv") in str(err.value)
    assert len(pl.read_csv(tmp_path / "logs" / "failures.csv")) == 5
    assert not (tmp_path / "emb.h5").exists() and not (tmp_path / "emb.failures.csv").exists()
    spec["max_fail_share"] = 5 / 12
    jobs.embed_gather(
        spec,
        sorted((tmp_path / "emb").glob("*.h5")),
        tmp_path / "tracks.parquet",
        tmp_path / "emb.h5",
        tmp_path / "f.csv",
    )
    assert len(read_embeddings(tmp_path / "emb.h5")[0]) == 7


# --- sharding, gather, resume ---


def clip_dataset(tmp: Path, n: int = 11) -> Path:
    durations = {f"id{i:02d}": 0.2 + 0.13 * i for i in range(n)}
    write_clips(tmp / "audios", durations)
    jobs.make_tracks(tmp / "audios", None, tmp / "tracks.parquet")
    return tmp / "tracks.parquet"


def test_shards_partition_contiguously_and_completely() -> None:
    bounds = [shard_bounds(11, i, 3) for i in range(3)]
    assert bounds == [(0, 4), (4, 8), (8, 11)]
    assert [shard_bounds(2, i, 3) for i in range(3)] == [(0, 1), (1, 2), (2, 2)]


def test_sharded_and_gathered_equals_unsharded(tmp_path: Path, dummy_registered: None) -> None:
    tracks = clip_dataset(tmp_path)
    one = run_backend(tmp_path / "one", {"type": "framestats", "layer": "proj"}, tracks=tracks)
    three = run_backend(
        tmp_path / "three", {"type": "framestats", "layer": "proj", "shards": 3, "chunk_size": 2}, tracks=tracks
    )
    ids1, emb1 = read_embeddings(one)
    ids3, emb3 = read_embeddings(three)
    assert ids1 == ids3 == sorted(ids1) and len(ids1) == 11
    np.testing.assert_array_equal(emb1, emb3)
    assert emb1.shape == (11, 2)  # the `proj` layer, trimmed to its width
    np.testing.assert_allclose(read_layers(one, "proj")[1], emb1, atol=2e-3)  # /layers is float16
    assert read_attrs(one)["layer_names"] == ["stats", "proj"]


def test_changing_the_layer_needs_only_the_gather(tmp_path: Path, dummy_registered: None) -> None:
    tracks = clip_dataset(tmp_path, 4)
    h5 = run_backend(tmp_path, {"type": "framestats", "layer": "proj"}, tracks=tracks)
    shard = tmp_path / "emb" / "shard0-of-1.h5"
    jobs.embed_gather(
        {"type": "framestats", "layer": "stats"}, [shard], tracks, tmp_path / "stats.h5", tmp_path / "f.csv"
    )
    assert read_embeddings(tmp_path / "stats.h5")[1].shape == (4, 3)
    np.testing.assert_allclose(read_layers(h5, "stats")[1], read_embeddings(tmp_path / "stats.h5")[1], atol=2e-3)


class Killed(FrameStats):
    """Dies like a killed job (KeyboardInterrupt: not an error the engine may swallow) on its
    `die_at`-th batch."""

    calls = 0

    def embed_batch(self, waves: Any, lengths: Any) -> LayerMeans:
        Killed.calls += 1
        if Killed.calls == self.spec["die_at"]:
            raise KeyboardInterrupt
        return super().embed_batch(waves, lengths)


def test_a_killed_shard_leaves_no_output_and_resumes_to_identical_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracks = clip_dataset(tmp_path)
    spec = {"type": "framestats", "chunk_size": 3, "batch_size": 2}
    out = tmp_path / "run" / "shard0-of-1.h5"
    Killed.calls = 0
    monkeypatch.setattr(jobs, "build_backend", lambda s: Killed({**s, "die_at": 5}))
    with pytest.raises(KeyboardInterrupt):
        jobs.embed_shard(spec, tracks, out, 0, 1)
    assert not out.exists()
    chunks = sorted(p.name for p in resume_dir(out, spec).glob("*.h5"))
    assert chunks == ["chunk000000.h5"]  # batches 1-2 finished chunk 0; batch 5 died inside chunk 1
    assert not list(out.parent.glob(".shard0-of-1.h5.*"))  # no temporary left behind either

    monkeypatch.setattr(jobs, "build_backend", lambda s: FrameStats(s))
    summary = jobs.embed_shard({**spec, "num_workers": 1, "max_fail_share": 0.5}, tracks, out, 0, 1)
    assert (summary.reused_chunks, summary.computed_chunks) == (1, 3)
    assert not (out.parent / ".resume").exists()
    fresh = tmp_path / "fresh" / "shard0-of-1.h5"
    jobs.embed_shard(spec, tracks, fresh, 0, 1)
    np.testing.assert_array_equal(read_layers(out)[1], read_layers(fresh)[1])
    assert read_layers(out)[0] == read_layers(fresh)[0]


def test_stale_resume_chunks_are_not_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tracks = clip_dataset(tmp_path, 4)
    spec = {"type": "framestats", "chunk_size": 2}
    out = tmp_path / "run" / "shard0-of-1.h5"
    monkeypatch.setattr(jobs, "build_backend", lambda s: Killed({**s, "die_at": 2}))
    Killed.calls = 0
    with pytest.raises(KeyboardInterrupt):
        jobs.embed_shard(spec, tracks, out, 0, 1)
    # the audio of the first chunk changes location: its chunk no longer matches
    frame = pl.read_parquet(tracks).with_columns(pl.col("path").str.replace("audios", "moved"))
    (tmp_path / "audios").rename(tmp_path / "moved")
    frame.write_parquet(tracks)
    monkeypatch.setattr(jobs, "build_backend", lambda s: FrameStats(s))
    summary = jobs.embed_shard(spec, tracks, out, 0, 1)
    assert (summary.reused_chunks, summary.computed_chunks) == (0, 2)


# --- decode workers, tracks index, run plan ---


def crash_on_bad(ref: TrackRef, rate: int) -> Decoded:
    if "bad" in ref.track_id:
        os._exit(3)  # a segfault in a native decoder, as far as the pool can tell
    return decode_ref(ref, rate)


def test_a_dying_decode_worker_fails_only_its_track(tmp_path: Path) -> None:
    refs = write_clips(tmp_path, {"a": 0.1, "bad": 0.1, "c": 0.1, "d": 0.1, "e": 0.1})
    with DecodePool(2, prefetch=3, decode_fn=crash_on_bad) as pool:
        out = list(pool.decode(refs, 8000))
    assert [d.ref.track_id for d in out] == ["a", "bad", "c", "d", "e"]
    assert [d.error is None for d in out] == [True, False, True, True, True]
    assert "worker process died" in (out[1].error or "")


def test_track_index_unites_audio_folder_and_log(tmp_path: Path) -> None:
    import bz2

    audios = tmp_path / "audios"
    write_clips(audios, {"a": 0.2, "b": 0.3})
    sf.write(audios / "a.mp3", tone(0.2), 8000)  # a second file for `a`: mp3 is preferred
    log = tmp_path / "log.tsv.bz2"
    log.write_bytes(
        bz2.compress(b"user_id\ttrack_id\ttimestamp\nu\tb\t2020-01-01 00:00:00\nu\tz\t2020-01-01 00:00:00\n")
    )
    index = jobs.make_tracks(audios, log, tmp_path / "tracks.parquet", threads=2)
    assert index["track_id"].to_list() == ["a", "b", "z"]
    assert index["path"].to_list() == [str(audios / "a.mp3"), str(audios / "b.wav"), None]
    assert index["status"].to_list() == ["ok", "ok", "missing"]
    assert index["sample_rate"].to_list() == [8000, 8000, None]
    assert index["duration"][1] == pytest.approx(0.3)
    assert pl.read_parquet(tmp_path / "tracks.parquet").equals(index)


def test_run_plan_splits_threads_and_refuses_missing_cuda() -> None:
    plan = plan_run(8, "cpu")
    assert (plan.num_workers, plan.torch_threads, plan.precision) == (4, 4, "fp32")
    assert plan_run(1, "cpu").num_workers == 0
    assert plan_run(4, "cpu", num_workers=0).torch_threads == 4
    if not torch.cuda.is_available():
        with pytest.raises(BackendError, match="CUDA is not available"):
            plan_run(2, "cuda")
        assert plan_run(2, "auto").device.type == "cpu"


def test_unknown_backend_type_lists_the_known_ones() -> None:
    with pytest.raises(registry.UnknownBackendError, match="unknown backend type 'wav2vec'; known types: .*mfcc"):
        registry.build_backend({"type": "wav2vec"})


class Weighted(FrameStats):
    """A backend with downloadable weights: prefetch writes them, load must find them."""

    type_name: ClassVar[str] = "weighted"
    has_weights: ClassVar[bool] = True

    def prefetch(self, cache_dir: Path) -> dict[str, Any]:
        (cache_dir / "model.bin").write_bytes(b"weights")
        return {"files": ["model.bin"], "revision": "abc"}

    def load(self, device: Any, precision: str = "fp32") -> None:
        assert self.weights_dir is not None and (self.weights_dir / "model.bin").read_bytes() == b"weights"
        super().load(device, precision)


def test_fetched_weights_are_where_extraction_loads_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    monkeypatch.setitem(registry.BACKEND_TYPES, "weighted", f"{__name__}:Weighted")
    spec = {"type": "weighted"}
    manifest = jobs.prefetch_weights(spec, tmp_path / "weights", tmp_path / "weights" / "manifests" / "w.json")
    on_disk = json.loads((tmp_path / "weights" / "manifests" / "w.json").read_text())
    assert on_disk["fetched"] == {"files": ["model.bin"], "revision": "abc"} == manifest["fetched"]
    assert on_disk["cache_dir"] == str(tmp_path / "weights" / "weighted")
    tracks = clip_dataset(tmp_path, 2)
    summary = jobs.embed_shard(spec, tracks, tmp_path / "s.h5", 0, 1, weights_root=tmp_path / "weights")
    assert summary.n_embedded == 2
    # a spec that names its own weights folder (musicnn's `weights_dir`) is fetched to and loaded from there
    own = {"type": "weighted", "weights_dir": str(tmp_path / "mine")}
    jobs.prefetch_weights(own, tmp_path / "weights", tmp_path / "weights" / "manifests" / "own.json")
    assert (tmp_path / "mine" / "model.bin").exists()
    assert jobs.embed_shard(own, tracks, tmp_path / "own.h5", 0, 1, weights_root=tmp_path / "weights").n_embedded == 2


class Uniform(FrameStats):
    """Two layers of one width, for `layer: mean`."""

    @property
    def layer_dims(self) -> list[int]:
        return [3, 3]


def test_layer_mean_averages_the_cached_layers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.BACKEND_TYPES, "uniform", f"{__name__}:Uniform")
    tracks = clip_dataset(tmp_path, 3)
    h5 = run_backend(tmp_path, {"type": "uniform", "layer": "mean"}, tracks=tracks)
    shard_layers = read_layers(tmp_path / "emb" / "shard0-of-1.h5")[1]
    np.testing.assert_allclose(read_embeddings(h5)[1], shard_layers.mean(axis=1), rtol=1e-6)

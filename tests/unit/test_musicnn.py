"""MusiCNN backend: mel front end vs librosa, patching like the original, layer shapes, the
checkpoint mapping (every tensor), parity with TensorFlow outputs, padding invariance, short
and loud clips, and the weights cache.

Tests that use the `musicnn_weights_dir` fixture (tests/conftest.py) download the musicnn==0.1.0 wheel from PyPI
once per machine (29 MB) into $AUDIOREC_TEST_CACHE or ~/.cache/audiorec-test.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from audiorec.audio.mel import MelSpectrogram, log_compress, slaney_mel_filterbank
from audiorec.backends import musicnn_weights
from audiorec.backends.base import BackendError, MissingWeightsError
from audiorec.backends.musicnn import (
    HOP,
    LAYERS,
    PATCH_MIN_SAMPLES,
    MusiCNNBackend,
    patch_counts,
)
from audiorec.backends.musicnn_net import (
    PATCH_FRAMES,
    CheckpointMismatchError,
    MusiCNN,
    banded_time_conv,
    checkpoint_mapping,
    is_optimizer_state,
    state_dict_from_checkpoint,
)
from audiorec.backends.registry import build_backend
from audiorec.backends.tf_bundle import TensorBundle

SR = 16000
DATA = Path(__file__).resolve().parents[1] / "data"


def randomize(model: MusiCNN, seed: int = 0) -> MusiCNN:
    """Random weights *and* batch-norm statistics (some scales negative), so that every
    layer, including the inference-time batch norms, matters for the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.ndim == 1:  # batch-norm gamma
                p.copy_(torch.randn(p.shape, generator=g) * 0.8 + 0.3)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5 / max(1, p[0].numel()) ** 0.5)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    return model.eval()


@pytest.fixture(scope="module")
def random_backend() -> MusiCNNBackend:
    backend = MusiCNNBackend({"type": "musicnn"})
    backend.load_model(randomize(MusiCNN()), "cpu")
    return backend


def tone_clip(seconds: float, seed: int = 0, gain: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = sum(np.sin(2 * np.pi * f * t) * rng.uniform(0.2, 1) for f in rng.uniform(80, 4000, 6))
    y = y * (0.6 + 0.4 * np.sin(2 * np.pi * t * rng.uniform(0.2, 2))) + 0.3 * rng.standard_normal(t.size)
    return (gain * y / np.abs(y).max()).astype(np.float32)


# --------------------------------------------------------------------------- mel front end


def test_mel_filterbank_matches_librosa() -> None:
    ours = slaney_mel_filterbank(SR, 512, 96)
    ref = librosa.filters.mel(sr=SR, n_fft=512, n_mels=96)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("n", [PATCH_MIN_SAMPLES, 2 * SR + 123, 4000])
def test_mel_spectrogram_matches_librosa(n: int) -> None:
    y = tone_clip(n / SR, seed=n)
    ref = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=512, hop_length=HOP, n_mels=96).T
    mel = MelSpectrogram(SR, 512, HOP, 96)(torch.from_numpy(y)[None])[0].numpy()
    assert mel.shape == ref.shape == (1 + n // HOP, 96)
    np.testing.assert_allclose(mel, ref, rtol=1e-4, atol=1e-7 * ref.max())
    np.testing.assert_allclose(
        log_compress(torch.from_numpy(mel)).numpy(), np.log10(10000 * ref + 1), atol=2e-5
    )


def test_mel_frames_ignore_trailing_batch_padding() -> None:
    y = tone_clip(2.0)
    mel = MelSpectrogram(SR, 512, HOP, 96)
    alone = mel(torch.from_numpy(y)[None])[0]
    padded = mel(F.pad(torch.from_numpy(y), (0, 5000))[None])[0, : alone.shape[0]]
    torch.testing.assert_close(padded, alone, rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------- patching


def original_patch_count(n_samples: int) -> int:
    """musicnn.extractor.batch_data with overlap = n_frames = 187 (its default)."""
    frames = 1 + n_samples // HOP  # librosa's centred STFT
    return len(range(0, frames - PATCH_FRAMES + 1, PATCH_FRAMES))


@pytest.mark.parametrize(
    "n",
    [PATCH_MIN_SAMPLES, PATCH_MIN_SAMPLES + HOP - 1, 187 * 2 * HOP - HOP - 1, 187 * 2 * HOP - HOP, 30 * SR, 29 * SR + 7],
)
def test_patch_counts_match_the_original(n: int) -> None:
    assert int(patch_counts(torch.tensor([n]))[0]) == original_patch_count(n)


def test_short_clips_get_one_patch() -> None:
    """The original crashes below one patch; here it is zero-padded to one."""
    counts = patch_counts(torch.tensor([0, 1, SR, PATCH_MIN_SAMPLES - 1]))
    assert counts.tolist() == [1, 1, 1, 1]
    assert original_patch_count(PATCH_MIN_SAMPLES - 1) == 0
    assert int(patch_counts(torch.tensor([30 * SR]))[0]) == 10


# --------------------------------------------------------------------------- network shapes


def test_layer_shapes() -> None:
    model = randomize(MusiCNN())
    x = torch.rand(3, PATCH_FRAMES, 96) * 3
    with torch.no_grad():
        assert model.frontend(x).shape == (3, 561, PATCH_FRAMES)
        out = model(x)
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "mean_pool": (3, 753),
        "max_pool": (3, 753),
        "penultimate": (3, 200),
        "logits": (3, 50),
    }
    assert all(torch.isfinite(v).all() for v in out.values())


def test_folded_constants_match_and_follow_new_weights() -> None:
    model = randomize(MusiCNN(), seed=5)
    x = torch.rand(2, PATCH_FRAMES, 96) * 3
    with torch.no_grad():
        fresh = model(x)
        folded = model.fold()(x)
        for name in fresh:
            torch.testing.assert_close(folded[name], fresh[name], rtol=0, atol=0)
        other = randomize(MusiCNN(), seed=6)
        model.load_state_dict(other.state_dict())  # must drop the cached constants
        torch.testing.assert_close(model(x)["penultimate"], other(x)["penultimate"], rtol=1e-6, atol=1e-6)


def literal_branch(x: torch.Tensor, conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm1d) -> torch.Tensor:
    """musicnn's order of operations: conv -> ReLU -> batch norm -> max over frequency. x [P, 1, T', F]."""
    y = F.relu(conv(x))  # [P, C, T, F']
    p, c, t, f = y.shape
    y = F.batch_norm(
        y.permute(0, 2, 3, 1).reshape(-1, c), bn.running_mean, bn.running_var, bn.weight, bn.bias, eps=bn.eps
    )
    return y.reshape(p, t, f, c).amax(2).permute(0, 2, 1)


def test_frontend_branches_equal_the_literal_order_of_operations() -> None:
    """The sign-folded max over frequency and the banded temporal GEMM are exact rewrites,
    for positive and negative batch-norm scales."""
    model = randomize(MusiCNN(), seed=3)
    with torch.no_grad():
        for bn in [*model.timbral_bn, *model.temporal_bn]:
            bn.weight[::2] = -bn.weight[::2].abs()
        x = torch.rand(2, PATCH_FRAMES, 96) * 3
        padded = F.pad(x.unsqueeze(1), (0, 0, 3, 3))
        for i in range(2):
            torch.testing.assert_close(
                model.timbral_branch(padded, i), literal_branch(padded, model.timbral[i], model.timbral_bn[i]),
                rtol=1e-4, atol=1e-4,
            )
        bands = x.transpose(1, 2).reshape(-1, PATCH_FRAMES)
        for i, k in enumerate((128, 64, 32)):
            same = F.pad(x.unsqueeze(1), (0, 0, (k - 1) // 2, k // 2))  # TF 'same' for an even kernel
            torch.testing.assert_close(
                model.temporal_branch(bands, i, 2), literal_branch(same, model.temporal[i], model.temporal_bn[i]),
                rtol=1e-4, atol=1e-4,
            )


@pytest.mark.parametrize(("k", "length", "block"), [(128, 187, 8), (5, 13, 4), (4, 9, 16), (1, 7, 3)])
def test_banded_time_conv_is_a_convolution(k: int, length: int, block: int) -> None:
    g = torch.Generator().manual_seed(k)
    x = torch.randn(6, length, generator=g)
    kernel = torch.randn(k, 3, generator=g)
    pad = (k - 1) // 2
    ref = F.conv1d(F.pad(x[:, None], (pad, k - 1 - pad)), kernel.T[:, None, :])  # [N, C, T]
    torch.testing.assert_close(banded_time_conv(x, kernel, pad, block), ref.transpose(1, 2), rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- checkpoint mapping (offline)


def to_tf_layout(model: MusiCNN) -> dict[str, np.ndarray]:
    """Invert the mapping by hand (TF stores conv kernels [kh, kw, in, out], dense [in, out])."""
    state = model.state_dict()
    out: dict[str, np.ndarray] = {}
    for tf_name, (torch_name, layout) in checkpoint_mapping().items():
        w = state[torch_name].numpy()
        if layout == "conv2d":
            w = w.transpose(2, 3, 1, 0)
        elif layout == "conv1d":  # Conv1d [out, width, k] was a TF conv over [k, width] with 1 channel
            w = w.transpose(2, 1, 0)[:, :, None, :]
        elif layout == "dense":
            w = w.T
        out[tf_name] = np.ascontiguousarray(w)
    return out


def test_mapping_round_trip_ignores_only_optimizer_state() -> None:
    model = randomize(MusiCNN(), seed=1)
    tensors = to_tf_layout(model)
    tensors.update({f"{k}/Adam": v * 0 for k, v in tensors.items()})
    tensors.update({f"{k[:-5]}/Adam_1": v for k, v in tensors.items() if k.endswith("/Adam")})
    tensors["beta1_power"] = np.float32(0.9)
    tensors["beta2_power"] = np.float32(0.999)
    fresh = MusiCNN()
    fresh.load_state_dict(state_dict_from_checkpoint(tensors))
    for name, value in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[name], value, rtol=0, atol=0, msg=name)


def test_mapping_rejects_missing_extra_and_misshapen_tensors() -> None:
    tensors = to_tf_layout(randomize(MusiCNN()))
    with pytest.raises(CheckpointMismatchError, match="missing"):
        state_dict_from_checkpoint({k: v for k, v in tensors.items() if k != "conv2d_5/kernel"})
    with pytest.raises(CheckpointMismatchError, match="unexpected"):
        state_dict_from_checkpoint({**tensors, "conv2d_8/kernel": np.zeros(3, np.float32)})
    bad = dict(tensors)
    bad["dense/kernel"] = bad["dense/kernel"][:100]
    with pytest.raises(CheckpointMismatchError, match="does not fit"):
        state_dict_from_checkpoint(bad)


# --------------------------------------------------------------------------- the backend (random weights)


def test_embed_batch_shapes_and_zero_padding(random_backend: MusiCNNBackend) -> None:
    waves = np.zeros((2, 10 * SR), np.float32)
    waves[0] = tone_clip(10)
    waves[1, : 4 * SR] = tone_clip(4, seed=1)
    out = random_backend.embed_batch(waves, [10 * SR, 4 * SR])
    assert tuple(out.means.shape) == (2, 4, 753)
    assert out.frames.tolist() == [3, 1]
    assert random_backend.layer_names == list(LAYERS)
    assert random_backend.layer_dims == [753, 753, 200, 50]
    for j, dim in enumerate(random_backend.layer_dims):
        assert bool((out.means[:, j, dim:] == 0).all())
    assert torch.isfinite(out.means).all()
    vectors = random_backend.select(out.means.numpy())
    assert vectors.shape == (2, 200)  # penultimate by default


def test_track_vector_is_the_mean_over_patches(random_backend: MusiCNNBackend) -> None:
    y = tone_clip(10, seed=4)
    patches, counts = random_backend.patch_outputs(torch.from_numpy(y)[None], [y.size])
    means = random_backend.embed_batch(y[None], [y.size]).means[0]
    assert counts.tolist() == [3]
    for j, (name, dim) in enumerate(LAYERS.items()):
        torch.testing.assert_close(means[j, :dim], patches[name].mean(0))
    assert bool(((patches["taggram"] > 0) & (patches["taggram"] < 1)).all())


def test_padded_batch_equals_single_clips(random_backend: MusiCNNBackend) -> None:
    lengths = [30 * SR, int(7.3 * SR), int(1.2 * SR)]
    clips = [tone_clip(n / SR, seed=i) for i, n in enumerate(lengths)]
    batch = np.zeros((3, max(lengths)), np.float32)
    for i, c in enumerate(clips):
        batch[i, : c.size] = c
    together = random_backend.embed_batch(batch, lengths)
    assert together.frames.tolist() == [10, 2, 1]
    for i, c in enumerate(clips):
        alone = random_backend.embed_batch(c[None], [c.size])
        assert alone.frames.tolist() == [together.frames[i]]
        torch.testing.assert_close(together.means[i], alone.means[0], rtol=1e-4, atol=1e-5)


def test_short_clip_equals_the_clip_padded_to_one_patch(random_backend: MusiCNNBackend) -> None:
    y = tone_clip(1.0, seed=5)
    short = random_backend.embed_batch(y[None], [y.size])
    padded = np.pad(y, (0, PATCH_MIN_SAMPLES - y.size))
    full = random_backend.embed_batch(padded[None], [padded.size])
    assert short.frames.tolist() == full.frames.tolist() == [1]
    torch.testing.assert_close(short.means, full.means, rtol=1e-5, atol=1e-6)
    assert random_backend.min_seconds == pytest.approx(PATCH_MIN_SAMPLES / SR)


def original_log_mel(y: np.ndarray) -> np.ndarray:
    """musicnn.extractor.batch_data's preprocessing, float16 cast included."""
    mel = librosa.feature.melspectrogram(y=y, sr=SR, hop_length=HOP, n_fft=512, n_mels=96).T
    mel = mel.astype(np.float16)
    with np.errstate(over="ignore"):
        return np.log10(10000 * mel + 1)


def test_loud_clips_stay_finite(random_backend: MusiCNNBackend) -> None:
    rng = np.random.default_rng(0)
    t = np.arange(6 * SR) / SR
    loud = [
        (0.9 * np.sin(2 * np.pi * 110 * t)).astype(np.float32),
        np.clip(rng.standard_normal(t.size), -1, 1).astype(np.float32),
    ]
    out = random_backend.embed_batch(np.stack(loud), [t.size, t.size])
    assert torch.isfinite(out.means).all()
    # the two loud clips still get different vectors (not the constant output of an overflow)
    assert float((out.means[0, 2] - out.means[1, 2]).abs().max()) > 1e-3
    if int(np.__version__.split(".")[0]) >= 2:
        # what the original would feed its network: NumPy 2 keeps 10000 * float16 in float16
        assert not np.isfinite(original_log_mel(loud[0])).all()


def test_spec_validation() -> None:
    assert build_backend({"type": "musicnn"}).spec["layer"] == "penultimate"
    assert build_backend({"type": "musicnn", "layer": "taggram"}).embedding_dim == 50
    assert build_backend({"type": "musicnn", "layer": "max_pool"}).embedding_dim == 753
    with pytest.raises(BackendError, match="unknown variant"):
        build_backend({"type": "musicnn", "variant": "MSD_vgg"})
    with pytest.raises(BackendError, match="unknown layer"):
        build_backend({"type": "musicnn", "layer": "cnn3"})
    with pytest.raises(BackendError, match="one width"):
        build_backend({"type": "musicnn", "layer": "mean"})
    with pytest.raises(BackendError, match="call load"):
        build_backend({"type": "musicnn"}).embed_batch(np.zeros((1, SR), np.float32), [SR])


# --------------------------------------------------------------------------- weights cache (offline, fake wheel)


def fake_wheel(path: Path, variants: tuple[str, ...] = ("MSD_musicnn",)) -> str:
    with zipfile.ZipFile(path, "w") as zf:
        for v in variants:
            zf.writestr(f"musicnn/{v}/.index", b"index-" + v.encode())
            zf.writestr(f"musicnn/{v}/.data-00000-of-00001", b"data-" + v.encode())
            zf.writestr(f"musicnn/{v}/config.json", b"{}")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_unpacks_verifies_and_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = tmp_path / "w.whl"
    monkeypatch.setattr(musicnn_weights, "WHEEL_SHA256", fake_wheel(wheel))
    monkeypatch.setenv(musicnn_weights.WHEEL_ENV, str(wheel))
    cache = tmp_path / "cache"
    manifest = musicnn_weights.fetch_variant(cache, "MSD_musicnn")
    assert (cache / "MSD_musicnn" / "model.index").read_bytes() == b"index-MSD_musicnn"
    assert set(manifest["files"]) == {"model.index", "model.data-00000-of-00001", "config.json"}
    wheel.unlink()  # cached now: no wheel needed
    assert musicnn_weights.fetch_variant(cache, "MSD_musicnn") == manifest
    assert wheel.exists() is False and not list(cache.glob(".*"))  # no temp folders left
    (cache / "MSD_musicnn" / "model.index").write_bytes(b"tampered")
    with pytest.raises(MissingWeightsError, match="corrupt.*Delete"):
        musicnn_weights.fetch_variant(cache, "MSD_musicnn")


def test_fetch_rejects_a_wheel_with_the_wrong_checksum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = tmp_path / "w.whl"
    fake_wheel(wheel)
    monkeypatch.setenv(musicnn_weights.WHEEL_ENV, str(wheel))
    with pytest.raises(MissingWeightsError, match="expected f38a4890.*pip download musicnn==0.1.0"):
        musicnn_weights.fetch_variant(tmp_path / "cache", "MSD_musicnn")
    assert not (tmp_path / "cache" / "MSD_musicnn").exists()


def test_failed_download_says_how_to_prefetch_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(musicnn_weights.WHEEL_ENV, "http://127.0.0.1:9/musicnn.whl")
    backend = MusiCNNBackend({"type": "musicnn", "weights_dir": str(tmp_path / "w")})
    with pytest.raises(MissingWeightsError, match="downloading .* failed.*pip download musicnn==0.1.0 --no-deps"):
        backend.load("cpu")


def test_fetch_names_a_variant_missing_from_the_wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = tmp_path / "w.whl"
    monkeypatch.setattr(musicnn_weights, "WHEEL_SHA256", fake_wheel(wheel, ("MTT_musicnn",)))
    monkeypatch.setenv(musicnn_weights.WHEEL_ENV, str(wheel))
    with pytest.raises(BackendError, match="no musicnn/MSD_musicnn/.index"):
        musicnn_weights.fetch_variant(tmp_path / "cache", "MSD_musicnn")


# --------------------------------------------------------------------------- the real checkpoint


@pytest.mark.parametrize("variant", ["MSD_musicnn", "MTT_musicnn"])
def test_every_checkpoint_tensor_is_mapped_or_optimizer_state(musicnn_weights_dir: Path, variant: str) -> None:
    bundle = TensorBundle(musicnn_weights_dir / variant / "model.index")
    names = set(bundle.names())
    mapping = checkpoint_mapping()
    model_names = {n for n in names if not is_optimizer_state(n)}
    assert model_names == set(mapping)
    # 11 batch norms x 4 + 8 convs x 2 + 2 dense x 2; Adam keeps 2 slots per trainable (all but the 22 moving stats)
    assert len(model_names) == 64 and len(names) == 64 + 2 * (64 - 22) + 2
    state = state_dict_from_checkpoint(bundle.read_all())
    assert set(state) == set(MusiCNN().state_dict())
    # spot-check the layout conversions against the raw TF arrays
    k = bundle.read("conv2d_1/kernel")  # timbral 7x67: [kh, kw, in, out]
    assert float(state["timbral.1.weight"][5, 0, 3, 60]) == float(k[3, 60, 0, 5])
    k = bundle.read("conv2d_5/kernel")  # mid-end 1: [7, 561, 1, 64]
    assert float(state["midend.0.weight"][9, 400, 2]) == float(k[2, 400, 0, 9])
    k = bundle.read("dense/kernel")
    assert float(state["dense.weight"][17, 1000]) == float(k[1000, 17])


@pytest.mark.parametrize("variant", ["MSD_musicnn", "MTT_musicnn"])
def test_port_matches_tensorflow(musicnn_weights_dir: Path, variant: str) -> None:
    """Against TF outputs of musicnn's own graph (benchmarks/musicnn_parity.py net-reference)."""
    ref = np.load(DATA / "musicnn_tf_reference.npz")
    backend = MusiCNNBackend({"type": "musicnn", "variant": variant, "weights_dir": str(musicnn_weights_dir)})
    backend.load("cpu")
    assert backend.model is not None
    with torch.inference_mode():
        out = backend.model(torch.from_numpy(ref["patches"].astype(np.float32)))
    out["taggram"] = torch.sigmoid(out["logits"])
    for layer in LAYERS:
        ours = out[layer].numpy().astype(np.float64)
        theirs = ref[f"{variant}/{layer}"].astype(np.float64)
        cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
        assert cos.min() > 0.99999, (layer, cos)
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-3 * np.abs(theirs).max(), err_msg=layer)


def test_prefetch_then_load_from_the_cache(musicnn_weights_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(musicnn_weights.WHEEL_ENV, str(musicnn_weights_dir / musicnn_weights.WHEEL_NAME))
    backend = build_backend({"type": "musicnn", "weights_dir": str(tmp_path / "weights")})
    manifest = backend.prefetch()
    assert manifest["wheel_sha256"] == musicnn_weights.WHEEL_SHA256
    monkeypatch.setenv(musicnn_weights.WHEEL_ENV, str(tmp_path / "gone.whl"))  # load must not need the wheel
    backend.load("cpu")
    y = tone_clip(6.5, seed=9)
    out = backend.embed_batch(y[None], [y.size])
    assert out.frames.tolist() == [2] and torch.isfinite(out.means).all()
    assert backend.attributes()["variant"] == "MSD_musicnn"

"""MERT: tiny HuBERT-shaped models saved as m-a-p/MERT-v1-* are, loaded through the hub path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from audiorec.backends.base import BackendError, MissingWeightsError
from audiorec.backends.hf_common import conv_out_lengths
from audiorec.backends.registry import build_backend

from big_backend_helpers import MERT_TINY, REVISION, clips, hf_cache, pad, save_mert

transformers = pytest.importorskip("transformers")





def hf_reference(folder: Path, wave: np.ndarray, stable: bool) -> np.ndarray:
    """transformers' own HubertModel forward on one unpadded clip, normalised as
    Wav2Vec2FeatureExtractor does: [L+1, D] time means (the last after the final norm)."""
    from transformers import HubertModel, Wav2Vec2FeatureExtractor

    fe = Wav2Vec2FeatureExtractor.from_pretrained(folder)
    model = HubertModel.from_pretrained(folder).eval()
    x = fe(wave, sampling_rate=24000, return_tensors="pt").input_values
    with torch.no_grad():
        out = model(x, output_hidden_states=True)
    states = list(out.hidden_states)
    if stable:
        states[-1] = out.last_hidden_state
    return torch.stack([s[0].mean(0) for s in states]).numpy()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return save_mert(tmp_path_factory.mktemp("mert") / "MERT-tiny")


def test_declares_rate_layers_and_frames(tiny_dir: Path) -> None:
    b = build_backend({"type": "mert", "weights": str(tiny_dir)})
    assert b.sample_rate == 24000 and b.window_seconds == 30.0
    assert b.layer_names == ["embedding", "layer1", "layer2"] and b.layer_dims == [32, 32, 32]
    b.load(torch.device("cpu"))
    waves, lengths = pad(clips(24000, [1.0, 0.6]))
    out = b.embed_batch(waves, lengths)
    assert out.means.shape == (2, 3, 32) and out.means.dtype == torch.float32
    assert torch.isfinite(out.means).all()
    # HuBERT's conv stack: 400-sample receptive field, 320-sample hop -> 74 frames per second at 24 kHz
    assert out.frames.tolist() == [74, 44]
    assert out.frames.tolist() == conv_out_lengths(lengths, MERT_TINY["conv_kernel"], MERT_TINY["conv_stride"]).tolist()


@pytest.mark.parametrize("stable", [False, True], ids=["group-norm(95M)", "stable-layer-norm(330M)"])
def test_padded_batch_equals_lone_items_and_transformers_forward(tmp_path: Path, stable: bool) -> None:
    folder = save_mert(tmp_path / "m", stable=stable)
    b = build_backend({"type": "mert", "weights": str(folder)})
    b.load(torch.device("cpu"))
    batch = clips(24000, [1.3, 0.5, 0.9], seed=3)
    together = b.embed_batch(*pad(batch)).means.numpy()
    for i, x in enumerate(batch):
        alone = b.embed_batch(*pad([x])).means.numpy()[0]
        np.testing.assert_allclose(together[i], alone, rtol=1e-4, atol=2e-5)
        np.testing.assert_allclose(alone, hf_reference(folder, x, stable), rtol=1e-4, atol=2e-5)


def test_group_norm_padding_would_leak_without_masking(tmp_path: Path) -> None:
    """The reason for the masked group norm: transformers' plain forward on a padded batch differs."""
    from transformers import HubertModel

    folder = save_mert(tmp_path / "m")
    model = HubertModel.from_pretrained(folder).eval()
    short, long = clips(24000, [0.5, 1.2])
    waves, _ = pad([short, long])
    with torch.no_grad():
        padded = model(waves[:1]).last_hidden_state[0, :34].mean(0)
        alone = model(waves[:1, : len(short)]).last_hidden_state[0].mean(0)
    assert not torch.allclose(padded, alone, atol=1e-4)


def test_hub_id_from_hf_cache_offline(tmp_path: Path, tiny_dir: Path, monkeypatch) -> None:
    cache = hf_cache(tmp_path / "hub", "m-a-p/MERT-v1-95M", tiny_dir)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    b = build_backend({"type": "mert"})  # default weights: m-a-p/MERT-v1-95M
    b.load(torch.device("cpu"))
    local = build_backend({"type": "mert", "weights": str(tiny_dir)})
    local.load(torch.device("cpu"))
    waves, lengths = pad(clips(24000, [0.8]))
    np.testing.assert_array_equal(b.embed_batch(waves, lengths).means, local.embed_batch(waves, lengths).means)
    attrs = b.attributes()
    assert attrs["weights"] == "m-a-p/MERT-v1-95M" and attrs["revision"] == REVISION
    assert attrs["sample_rate"] == 24000 and attrs["do_normalize"] is True


def test_missing_download_says_where_to_put_files(tmp_path: Path, monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    b = build_backend({"type": "mert", "weights": "m-a-p/MERT-v1-330M", "local_files_only": True})
    # layers are still declared for the published ids
    assert len(b.layer_names) == 25 and b.layer_dims[0] == 1024
    with pytest.raises(MissingWeightsError) as err:
        b.load(torch.device("cpu"))
    msg = str(err.value)
    assert "huggingface-cli download m-a-p/MERT-v1-330M" in msg and "weights:" in msg and "fetch_weights" in msg


def test_normalisation_follows_preprocessor_config(tmp_path: Path) -> None:
    x = clips(24000, [0.7])
    for do_normalize, invariant in [(True, True), (False, False)]:
        folder = save_mert(tmp_path / f"n{do_normalize}", do_normalize=do_normalize)
        b = build_backend({"type": "mert", "weights": str(folder)})
        b.load(torch.device("cpu"))
        a = b.embed_batch(*pad(x)).means
        scaled = b.embed_batch(*pad([3.0 * x[0]])).means
        assert torch.allclose(a, scaled, atol=1e-4) is invariant


@pytest.mark.parametrize("key", ["feature_extractor_cqt", "deepnorm"])
def test_refuses_what_hubert_does_not_implement(tmp_path: Path, key: str) -> None:
    folder = save_mert(tmp_path / "m", **{key: True})
    with pytest.raises(BackendError, match=key):
        build_backend({"type": "mert", "weights": str(folder)}).load(torch.device("cpu"))


def test_layer_selection(tiny_dir: Path) -> None:
    layers = np.arange(2 * 3 * 32, dtype=np.float32).reshape(2, 3, 32)
    for layer, expect in [("last", layers[:, 2]), (0, layers[:, 0]), (-2, layers[:, 1]), ("mean", layers.mean(1))]:
        b = build_backend({"type": "mert", "weights": str(tiny_dir), "layer": layer})
        np.testing.assert_array_equal(b.select(layers), expect)
    with pytest.raises(BackendError, match="out of range"):
        build_backend({"type": "mert", "weights": str(tiny_dir), "layer": 3}).select(layers)


def test_checkpoint_that_does_not_fit_is_named(tmp_path: Path) -> None:
    folder = save_mert(tmp_path / "m")
    state = torch.load(folder / "pytorch_model.bin", weights_only=True)
    state["encoder.extra.weight"] = torch.zeros(1)
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(BackendError, match="unexpected.*encoder.extra.weight"):
        build_backend({"type": "mert", "weights": str(folder)}).load(torch.device("cpu"))


def test_mean_of_layers_declares_its_width(tiny_dir: Path) -> None:
    assert build_backend({"type": "mert", "weights": str(tiny_dir), "layer": "mean"}).embedding_dim == 32

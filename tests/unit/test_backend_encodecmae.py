"""EncodecMAE: a tiny v1 model saved as lpepino/encodecmae-* is (model.pt + config.gin)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from audiorec.backends.base import BackendError
from audiorec.backends.encodecmae import gin_settings
from audiorec.backends.registry import build_backend

from big_backend_helpers import CONFIG_GIN, clips, hf_cache, pad, save_encodecmae





@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return save_encodecmae(tmp_path_factory.mktemp("ecmae") / "encodecmae-tiny")


@pytest.fixture(scope="module")
def loaded(tiny_dir: Path):
    b = build_backend({"type": "encodecmae", "weights": str(tiny_dir)})
    b.load(torch.device("cpu"))
    return b


def test_declares_rate_window_layers_and_75hz_frames(loaded) -> None:
    assert loaded.sample_rate == 24000 and loaded.window_seconds == 4.0
    assert loaded.layer_names == ["input", "layer1", "layer2"] and loaded.layer_dims == [16, 16, 16]
    out = loaded.embed_batch(*pad(clips(24000, [1.0, 0.5])))
    assert out.means.shape == (2, 3, 16) and torch.isfinite(out.means).all()
    assert out.frames.tolist() == [75, 37]


def test_padded_batch_equals_lone_items(loaded) -> None:
    batch = clips(24000, [1.2, 0.4, 0.8], seed=7)
    together = loaded.embed_batch(*pad(batch)).means
    for i, x in enumerate(batch):
        torch.testing.assert_close(together[i], loaded.embed_batch(*pad([x])).means[0], rtol=1e-4, atol=2e-5)


def test_feed_forward_shared_like_upstream_unless_checkpoint_differs(loaded, tmp_path: Path) -> None:
    layers = loaded.model.visible_encoder.encoder_layers
    assert layers[0].ff_layer is layers[1].ff_layer
    other = build_backend({"type": "encodecmae", "weights": str(save_encodecmae(tmp_path / "u", shared_ff=False))})
    other.load(torch.device("cpu"))
    layers = other.model.visible_encoder.encoder_layers
    assert layers[0].ff_layer is not layers[1].ff_layer
    assert not torch.equal(layers[0].ff_layer[0].weight, layers[1].ff_layer[0].weight)


def test_hub_cache_offline(tmp_path: Path, tiny_dir: Path, loaded, monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_cache(tmp_path / "hub", "lpepino/encodecmae-base", tiny_dir)))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    b = build_backend({"type": "encodecmae", "layer": "mean"})
    assert b.layer_names[-1] == "layer2"
    b.load(torch.device("cpu"))
    waves, lengths = pad(clips(24000, [0.3]))
    torch.testing.assert_close(b.embed_batch(waves, lengths).means, loaded.embed_batch(waves, lengths).means)


def test_gin_settings_read_not_executed() -> None:
    assert gin_settings(CONFIG_GIN) == {"num_heads": 4, "encodec_scale": 1.0}
    scaled = CONFIG_GIN + "tasks.models.encodecmae.encoders.EncodecEncoder.scale = 0.5\n"
    assert gin_settings(scaled)["encodec_scale"] == 0.5
    with pytest.raises(BackendError, match="norm_type"):
        gin_settings(CONFIG_GIN.replace("    compile=True\n", "    compile=True\n    norm_type='prenorm'\n", 1))

"""EncodecMAE: a tiny v1 model saved as lpepino/encodecmae-* is (model.pt + config.gin)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from audiorec.backends.base import BackendError
from audiorec.backends.encodecmae import gin_settings
from audiorec.backends.encodecmae_net import EncodecMAE
from audiorec.backends.registry import build_backend

from big_backend_helpers import clips, hf_cache, old_weight_norm_names, pad

CONFIG_GIN = """NUM_ENCODEC_TARGETS=8
MODEL_DIM=16
NUM_ENCODER_LAYERS=2
NUM_ENCODER_HEADS=4
NUM_DECODER_LAYERS=2
tasks.models.EncodecMAE:
    wav_encoder = @tasks.models.encodecmae.encoders.EncodecEncoder
    visible_encoder = @encoder/tasks.models.transformers.TransformerEncoder
encoder/tasks.models.transformers.TransformerEncoder:
    model_dim=%MODEL_DIM
    num_layers=%NUM_ENCODER_LAYERS
    attention_layer=@encoder/tasks.models.transformers.MultiHeadAttention
    compile=True
encoder/tasks.models.transformers.MultiHeadAttention:
    model_dim=%MODEL_DIM
    num_heads=%NUM_ENCODER_HEADS
"""


def save_encodecmae(folder: Path, *, shared_ff: bool = True, seed: int = 0) -> Path:
    """As upstream's hub files: model.pt = {'state_dict': ...} with the training-only modules
    (decoder, heads, target quantiser) and old weight-norm names; config.gin beside it."""
    torch.manual_seed(seed)
    model = EncodecMAE(model_dim=16, num_layers=2, num_heads=4, ff_dim=32)
    if not shared_ff:
        model.visible_encoder.unshare_feed_forward()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    state = old_weight_norm_names(model.state_dict())
    state.update({"decoder.encoder_layers.0.norm1.weight": torch.ones(16), "head.layer.weight": torch.zeros(64, 16),
                  "decoder_projector.weight": torch.zeros(16, 16),
                  "target_encoder.model.vq.layers.0._codebook.embed": torch.zeros(8, 128)})
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "epoch": 1}, folder / "model.pt")
    (folder / "config.gin").write_text(CONFIG_GIN)
    (folder / "imports").write_text("encodecmae.tasks.models: tasks.models\n")
    return folder


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

"""Music2Vec: a tiny Data2VecAudio model saved as m-a-p/music2vec-v1 is, at its own 16 kHz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from audiorec.backends.registry import build_backend

from big_backend_helpers import clips, hf_cache, pad, save_music2vec

transformers = pytest.importorskip("transformers")





@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return save_music2vec(tmp_path_factory.mktemp("m2v") / "music2vec-tiny")


def test_declares_16k_and_layers(tiny_dir: Path) -> None:
    b = build_backend({"type": "music2vec", "weights": str(tiny_dir)})
    assert b.sample_rate == 16000  # its own rate, not the reference code's 24 kHz
    assert b.layer_names == ["embedding", "layer1", "layer2"] and b.layer_dims == [32] * 3
    b.load(torch.device("cpu"))
    out = b.embed_batch(*pad(clips(16000, [1.0, 0.4])))
    assert out.means.shape == (2, 3, 32) and torch.isfinite(out.means).all()
    assert out.frames.tolist() == [49, 19]  # 16 kHz, 320-sample hop, 400-sample field


def test_padded_batch_equals_lone_items_and_transformers_forward(tiny_dir: Path) -> None:
    """Data2Vec's 5-conv positional embedding leaks padding unless re-zeroed between convs."""
    from transformers import Data2VecAudioModel, Wav2Vec2FeatureExtractor

    b = build_backend({"type": "music2vec", "weights": str(tiny_dir)})
    b.load(torch.device("cpu"))
    batch = clips(16000, [1.2, 0.45, 0.8], seed=5)
    together = b.embed_batch(*pad(batch)).means.numpy()
    fe = Wav2Vec2FeatureExtractor.from_pretrained(tiny_dir)
    model = Data2VecAudioModel.from_pretrained(tiny_dir).eval()
    for i, x in enumerate(batch):
        with torch.no_grad():
            out = model(fe(x, sampling_rate=16000, return_tensors="pt").input_values, output_hidden_states=True)
        reference = torch.stack([s[0].mean(0) for s in out.hidden_states]).numpy()
        np.testing.assert_allclose(together[i], reference, rtol=1e-4, atol=2e-5)
    # transformers' own padded forward (with attention mask) does not give the lone-item result
    waves, lengths = pad([fe(x, sampling_rate=16000).input_values[0] for x in batch[:2]])
    mask = (torch.arange(waves.shape[1])[None] < lengths[:, None]).long()
    with torch.no_grad():
        padded = model(waves, attention_mask=mask).last_hidden_state[1, :21].mean(0).numpy()
    assert not np.allclose(padded, together[1, -1], atol=1e-4)


def test_hub_id_from_hf_cache_offline(tmp_path: Path, tiny_dir: Path, monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_cache(tmp_path / "hub", "m-a-p/music2vec-v1", tiny_dir)))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    b = build_backend({"type": "music2vec", "layer": 1})
    b.load(torch.device("cpu"))
    out = b.embed_batch(*pad(clips(16000, [0.5])))
    assert out.means.shape == (1, 3, 32)
    assert b.select(out.means.numpy()).shape == (1, 32)

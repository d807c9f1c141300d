"""CLAP: a tiny random ClapModel saved as laion/larger_clap_music is laid out, loaded through
the hub path, against transformers' own processor + ClapModel.get_audio_features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from big_backend_helpers import REVISION, clips, hf_cache, pad, save_clap

from audiorec.backends.base import BackendError
from audiorec.backends.clap import ClapBackend, unused_checkpoint_keys
from audiorec.backends.registry import build_backend

RATE = 48000


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_clap(tmp_path_factory.mktemp("clap") / "model")


def reference(folder: Path, clip: np.ndarray) -> dict[str, torch.Tensor]:
    """transformers alone: the published extractor and ClapModel on one clip (<= 10 s)."""
    from transformers import ClapFeatureExtractor, ClapModel

    model = ClapModel.from_pretrained(folder).eval()
    inputs = ClapFeatureExtractor.from_pretrained(folder)([clip.astype(np.float64)], sampling_rate=RATE, return_tensors="pt")
    with torch.no_grad():
        features = model.get_audio_features(input_features=inputs["input_features"].float(), is_longer=inputs["is_longer"] * 0)
        out = model.audio_model(input_features=inputs["input_features"].float(), is_longer=inputs["is_longer"] * 0,
                                output_hidden_states=True)
    features = getattr(features, "pooler_output", features)
    return {"projection": features[0], "pooled": out.pooler_output[0],
            "stages": [h[0].mean(dim=(1, 2)) for h in out.hidden_states]}


def test_declares_rate_window_and_layers(tiny_dir: Path) -> None:
    backend = ClapBackend({"weights": str(tiny_dir)})
    assert backend.sample_rate == RATE and backend.window_seconds == 10.0
    assert backend.layer_names == ["patch_embed", "stage1", "stage2", "pooled", "projection"]
    assert backend.layer_dims == [8, 16, 16, 16, 8]
    assert backend.selected_layer_index() == 4  # the joint embedding by default
    # the published checkpoints are declared before their config is on this machine
    published = ClapBackend({"local_files_only": True})
    assert published.layer_dims == [128, 256, 512, 1024, 1024, 1024, 512]


def test_each_window_equals_transformers_and_a_batch_equals_lone_clips(tiny_dir: Path) -> None:
    backend = ClapBackend({"weights": str(tiny_dir)})
    backend.load(torch.device("cpu"))
    batch = clips(RATE, [3.0, 1.2, 10.0])
    waves, lengths = pad(batch)
    out = backend.embed_batch(waves, lengths)
    assert out.means.shape == (3, 5, 16)
    assert out.frames.tolist() == [300, 120, 1000]  # 10 ms hops of true audio: windows' pooling weights
    for i, clip in enumerate(batch):
        ref = reference(tiny_dir, clip)
        torch.testing.assert_close(out.means[i, 4, :8], ref["projection"], atol=1e-5, rtol=1e-4)
        assert float(out.means[i, 4, :8].norm()) == pytest.approx(1.0, abs=1e-5)
        torch.testing.assert_close(out.means[i, 3, :16], ref["pooled"], atol=1e-5, rtol=1e-4)
        for j, stage in enumerate(ref["stages"]):
            torch.testing.assert_close(out.means[i, j, : stage.shape[0]], stage, atol=1e-5, rtol=1e-4)
        lone = backend.embed_batch(*pad([clip]))
        torch.testing.assert_close(lone.means[0], out.means[i], atol=1e-5, rtol=1e-4)


def test_fusion_model_is_deterministic_and_never_flags_is_longer(tmp_path: Path) -> None:
    folder = save_clap(tmp_path / "fused", fusion=True)
    backend = ClapBackend({"weights": str(folder)})
    backend.load(torch.device("cpu"))
    batch = clips(RATE, [2.0, 4.0])
    first = backend.embed_batch(*pad(batch)).means
    np.random.seed(123)  # the extractor's own randomness would pick another item to flag
    second = backend.embed_batch(*pad(batch)).means
    torch.testing.assert_close(first, second)
    for i, clip in enumerate(batch):
        torch.testing.assert_close(first[i, 4, :8], reference(folder, clip)["projection"], atol=1e-5, rtol=1e-4)


def test_hub_id_from_hf_cache_offline(tmp_path: Path, tiny_dir: Path, monkeypatch) -> None:
    cache = hf_cache(tmp_path / "hub", "laion/larger_clap_music", tiny_dir)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    backend = build_backend({"type": "clap", "local_files_only": True})
    backend.load(torch.device("cpu"))
    assert backend.attributes()["revision"] == REVISION
    assert backend.layer_dims == [8, 16, 16, 16, 8]  # from the cached config, not the published sizes


def test_only_the_text_tower_is_left_unread(tiny_dir: Path) -> None:
    from safetensors.torch import load_file

    keys = list(load_file(str(tiny_dir / "model.safetensors")))
    unused = unused_checkpoint_keys(keys)
    assert unused and all(k.startswith(("text_", "logit_scale")) for k in unused)
    assert not any(k.startswith("audio_") for k in unused)


def test_a_checkpoint_without_the_audio_tower_is_named(tmp_path: Path, tiny_dir: Path) -> None:
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "textonly"
    folder.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (folder / name).write_bytes((tiny_dir / name).read_bytes())
    state = {k: v for k, v in load_file(str(tiny_dir / "model.safetensors")).items() if not k.startswith("audio_")}
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(BackendError, match="audio_model"):
        ClapBackend({"weights": str(folder)}).load(torch.device("cpu"))

"""MULE through mule-torch: a tiny random SF-NFNet-F0 saved as matteospanio/mule is laid out,
loaded through the hub path; against mule-torch's own MuleModel, and its front end against the
official recipe computed with librosa (mule_embedding_timeline.yml's mel settings)."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import torch
from big_backend_helpers import REVISION, clips, hf_cache, pad, save_mule

from audiorec.backends.base import BackendError
from audiorec.backends.mule import MuleBackend
from audiorec.backends.registry import build_backend

RATE = 16000


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_mule(tmp_path_factory.mktemp("mule") / "model")


@pytest.fixture(scope="module")
def backend(tiny_dir: Path) -> MuleBackend:
    b = MuleBackend({"weights": str(tiny_dir)})
    b.load(torch.device("cpu"))
    return b


def test_front_end_is_the_official_librosa_mel(backend: MuleBackend) -> None:
    x = clips(RATE, [2.2])[0]
    ours = backend.model.frontend(torch.from_numpy(x)[None])[0].numpy()
    power = librosa.feature.melspectrogram(y=x.astype(np.float64), sr=RATE, n_fft=2048, hop_length=160, win_length=400,
                                           window="hann", center=True, pad_mode="reflect", power=2.0, n_mels=96,
                                           fmin=0.0, fmax=8000.0, htk=True, norm=2.0)
    np.testing.assert_allclose(ours, np.log10(10000.0 * power + 1.0), atol=1e-3)  # float32 DFT vs float64


def test_batch_equals_mule_torch_on_each_clip(backend: MuleBackend, tiny_dir: Path) -> None:
    from mule_torch import MuleModel

    reference = MuleModel.from_pretrained(hf_repo=None, model_dir=tiny_dir)
    batch = clips(RATE, [4.5, 1.0, 2.9])
    out = backend.embed_batch(*pad(batch))
    assert out.means.shape == (3, 1, 288)
    assert out.frames.tolist() == [2, 1, 1]  # slices centred every 200 frames (2 s) inside the clip, one at least
    for i, clip in enumerate(batch):
        with torch.no_grad():
            ref = reference(torch.from_numpy(clip)[None])[0]
        torch.testing.assert_close(out.means[i, 0], ref, atol=1e-5, rtol=1e-4)


def test_input_gain_scales_the_waveform(tiny_dir: Path, backend: MuleBackend) -> None:
    half = MuleBackend({"weights": str(tiny_dir), "input_gain": 0.5})
    half.load(torch.device("cpu"))
    x = clips(RATE, [2.0])
    torch.testing.assert_close(half.embed_batch(*pad(x)).means, backend.embed_batch(*pad([0.5 * x[0]])).means)
    assert not torch.allclose(half.embed_batch(*pad(x)).means, backend.embed_batch(*pad(x)).means)


def test_declares_and_loads_from_the_hub_cache(tmp_path: Path, tiny_dir: Path, monkeypatch) -> None:
    assert MuleBackend({"local_files_only": True}).layer_dims == [1728]  # the published model, before download
    cache = hf_cache(tmp_path / "hub", "matteospanio/mule", tiny_dir)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    b = build_backend({"type": "mule", "local_files_only": True})
    assert b.sample_rate == RATE and b.layer_names == ["embedding"] and b.layer_dims == [288]
    b.load(torch.device("cpu"))
    assert b.attributes()["revision"] == REVISION


def test_a_checkpoint_without_the_filterbank_is_named(tmp_path: Path, tiny_dir: Path) -> None:
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "nofb"
    folder.mkdir()
    (folder / "config.json").write_bytes((tiny_dir / "config.json").read_bytes())
    state = {k: v for k, v in load_file(str(tiny_dir / "model.safetensors")).items() if k != "frontend.mel_fb"}
    save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(BackendError, match="mel_fb"):
        MuleBackend({"weights": str(folder)}).load(torch.device("cpu"))

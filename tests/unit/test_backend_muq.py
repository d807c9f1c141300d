"""MuQ: a tiny random MuQ saved as OpenMuQ/MuQ-large-msd-iter is laid out (config.json +
model.safetensors), loaded through the hub path. Outputs against the `muq` package's own code
are checked by benchmarks/verify_upstream.py (docs/backends.md); here: the computed mel front
end against librosa, padding, layout, and refusals."""

from __future__ import annotations

import json
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch
from big_backend_helpers import N_MELS, REVISION, clips, hf_cache, pad, save_muq

from audiorec.backends.base import BackendError
from audiorec.backends.muq import MuQBackend, muq_state
from audiorec.backends.muq_net import htk_mel_filterbank
from audiorec.backends.registry import build_backend

RATE = 24000


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_muq(tmp_path_factory.mktemp("muq") / "model")


def test_filterbank_is_the_htk_one_torchaudio_builds() -> None:
    ours = htk_mel_filterbank(1025, 128, RATE).numpy()
    ref = librosa.filters.mel(sr=RATE, n_fft=2048, n_mels=128, htk=True, norm=None, fmin=0.0, fmax=RATE / 2).T
    np.testing.assert_allclose(ours, ref, atol=2e-6)


def test_mel_front_end_equals_librosa(tiny_dir: Path) -> None:
    backend = MuQBackend({"weights": str(tiny_dir)})
    backend.load(torch.device("cpu"))
    x = clips(RATE, [1.3])[0]
    ours = backend.model.preprocessor_melspec_2048(torch.from_numpy(x)).numpy()
    power = librosa.feature.melspectrogram(y=x.astype(np.float64), sr=RATE, n_fft=2048, hop_length=240, n_mels=N_MELS,
                                           htk=True, norm=None, center=True, pad_mode="reflect", power=2.0)
    np.testing.assert_allclose(ours, 10 * np.log10(np.maximum(power, 1e-10)), atol=2e-3)


def test_declares_rate_layers_and_a_padded_batch_equals_lone_clips(tiny_dir: Path) -> None:
    backend = MuQBackend({"weights": str(tiny_dir)})
    assert backend.sample_rate == RATE and backend.window_seconds == 30.0
    assert backend.layer_names == ["conv_subsampling", "conformer1", "conformer2"] and backend.layer_dims == [32] * 3
    assert MuQBackend({"local_files_only": True}).layer_dims == [1024] * 13  # the published size, before download
    backend.load(torch.device("cpu"))
    batch = clips(RATE, [2.0, 0.7, 1.31])
    out = backend.embed_batch(*pad(batch))
    assert out.frames.tolist() == [50, 18, 33]  # 25 Hz: ceil(ceil(samples // 240 / 2) / 2)
    for i, clip in enumerate(batch):
        lone = backend.embed_batch(*pad([clip]))
        torch.testing.assert_close(lone.means[0], out.means[i], atol=2e-5, rtol=1e-4)
    assert torch.isfinite(backend.embed_batch(torch.zeros(1, RATE), torch.tensor([RATE])).means).all()


def test_hub_id_from_hf_cache_offline(tmp_path: Path, tiny_dir: Path, monkeypatch) -> None:
    cache = hf_cache(tmp_path / "hub", "OpenMuQ/MuQ-large-msd-iter", tiny_dir)
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    backend = build_backend({"type": "muq", "local_files_only": True})
    assert backend.layer_dims == [32] * 3  # read from the cached config.json
    backend.load(torch.device("cpu"))
    assert backend.attributes()["revision"] == REVISION


def test_only_the_pretraining_targets_are_left_out(tiny_dir: Path) -> None:
    from safetensors.torch import load_file

    state, unused = muq_state(load_file(str(tiny_dir / "model.safetensors")))
    assert unused and all(k.startswith("rvq.") for k in unused)
    assert {"linear.weight", "cls_token", "conv.linear.weight"} <= set(state)


def test_other_label_rates_are_refused(tmp_path: Path) -> None:
    folder = save_muq(tmp_path / "m50")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "label_rate": 50}))
    with pytest.raises(BackendError, match="label_rate 50"):
        MuQBackend({"weights": str(folder)}).load(torch.device("cpu"))

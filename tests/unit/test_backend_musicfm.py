"""MusicFM: a tiny model saved as minzwon/MusicFM's Lightning checkpoint + stats json."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from audiorec.backends.base import MissingWeightsError
from audiorec.backends.registry import build_backend

from big_backend_helpers import N_MELS, clips, hf_cache, pad, save_musicfm

pytest.importorskip("transformers")





@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return save_musicfm(tmp_path_factory.mktemp("musicfm") / "MusicFM")


@pytest.fixture(scope="module")
def loaded(tiny_dir: Path):
    b = build_backend({"type": "musicfm", "weights": str(tiny_dir)})
    b.load(torch.device("cpu"))
    return b


def test_declares_rate_layers_and_25hz_frames(loaded) -> None:
    assert loaded.sample_rate == 24000 and loaded.window_seconds == 30.0
    assert loaded.layer_names == ["conv_subsampling", "conformer1", "conformer2"]
    out = loaded.embed_batch(*pad(clips(24000, [1.0, 0.5])))
    # time-mean: one 32-dim vector per layer (not a mean over channels, the reference code's bug)
    assert out.means.shape == (2, 3, 32) and torch.isfinite(out.means).all()
    assert out.frames.tolist() == [25, 13]  # 100 / 50 mel frames -> x4 subsampling (ceil)


def test_padded_batch_equals_lone_items(loaded) -> None:
    batch = clips(24000, [1.1, 0.37, 0.8], seed=2)
    together = loaded.embed_batch(*pad(batch)).means
    for i, x in enumerate(batch):
        alone = loaded.embed_batch(*pad([x])).means[0]
        torch.testing.assert_close(together[i], alone, rtol=1e-4, atol=2e-5)


def test_mel_front_end_matches_librosa(loaded) -> None:
    x = clips(24000, [0.5])[0]
    mel = loaded.model.preprocessor_melspec_2048(torch.from_numpy(x)).numpy()
    ref = librosa.feature.melspectrogram(y=x, sr=24000, n_fft=2048, hop_length=240, n_mels=N_MELS, htk=True,
                                         norm=None, center=True, pad_mode="reflect", power=2.0)
    ref = librosa.power_to_db(ref, ref=1.0, amin=1e-10, top_db=None)
    np.testing.assert_allclose(mel, ref, atol=2e-3)


def test_hub_cache_offline_and_file_paths(tmp_path: Path, tiny_dir: Path, loaded, monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hf_cache(tmp_path / "hub", "minzwon/MusicFM", tiny_dir)))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    waves, lengths = pad(clips(24000, [0.6]))
    expect = loaded.embed_batch(waves, lengths).means
    hub = build_backend({"type": "musicfm"})
    assert hub.layer_names[-1] == "conformer2"  # read off the cached checkpoint before loading
    hub.load(torch.device("cpu"))
    assert hub.attributes()["revision"] != "local"
    torch.testing.assert_close(hub.embed_batch(waves, lengths).means, expect)
    as_file = build_backend({"type": "musicfm", "weights": str(tiny_dir / "pretrained_msd.pt")})
    as_file.load(torch.device("cpu"))
    torch.testing.assert_close(as_file.embed_batch(waves, lengths).means, expect)
    with pytest.raises(MissingWeightsError, match="pretrained_fma.pt"):
        build_backend({"type": "musicfm", "variant": "fma"}).load(torch.device("cpu"))

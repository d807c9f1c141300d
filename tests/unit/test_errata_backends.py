"""The backends' erratum settings restore the published code's behaviour, and differ from the
fixed behaviour exactly as described (README, "Deviations from the published reference code"):

- musicnn `erratum_first_patch`: every patch's penultimate vector is the first patch's (musicnn
  0.1.0's extractor); the other layers are untouched;
- musicfm `erratum_channel_pooling`: a clip becomes 30 s and each hidden state is averaged over
  channels: the vector's length is the time axis (750 frames at 30 s), not the hidden size;
- music2vec `erratum_24khz`: the backend asks the engine for 24 kHz audio (16 kHz fixed).
Random weights, offline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from audiorec.backends.musicnn import LAYERS, MusiCNNBackend, repeat_first_patch
from audiorec.backends.musicnn_net import MusiCNN
from audiorec.backends.registry import build_backend

from big_backend_helpers import clips, pad, save_music2vec, save_musicfm
from test_musicnn import SR, randomize, tone_clip

# ---------------------------------------------------------------------------------- musicnn


def _musicnn(erratum: bool) -> MusiCNNBackend:
    backend = MusiCNNBackend({"type": "musicnn", "erratum_first_patch": erratum})
    backend.load_model(randomize(MusiCNN(), seed=7), "cpu")
    return backend


def test_repeat_first_patch_by_hand() -> None:
    rows = torch.arange(12.0).reshape(6, 2)  # clips of 3, 1 and 2 patches
    out = repeat_first_patch(rows, torch.tensor([3, 1, 2]))
    expected = torch.tensor([[0.0, 1], [0, 1], [0, 1], [6, 7], [8, 9], [8, 9]])
    torch.testing.assert_close(out, expected)


def test_musicnn_first_patch_erratum_repeats_each_clips_first_penultimate() -> None:
    fixed, erratum = _musicnn(False), _musicnn(True)
    lengths = [10 * SR, 7 * SR]
    batch = np.zeros((2, 10 * SR), np.float32)
    batch[0] = tone_clip(10, seed=1)
    batch[1, : 7 * SR] = tone_clip(7, seed=2)
    good, counts = fixed.patch_outputs(batch, lengths)
    bad, counts_bad = erratum.patch_outputs(batch, lengths)
    assert counts.tolist() == counts_bad.tolist() == [3, 2]
    starts = [0, 3]
    for clip, (start, n) in enumerate(zip(starts, counts.tolist(), strict=True)):
        first = good["penultimate"][start]
        for j in range(start, start + n):
            # every patch's vector equals the first patch's...
            torch.testing.assert_close(bad["penultimate"][j], first)
        # ...where the fixed patches differ from each other
        assert not torch.allclose(good["penultimate"][start + 1], first, atol=1e-4)
    for name in LAYERS:
        if name != "penultimate":  # musicnn 0.1.0 concatenates these correctly
            torch.testing.assert_close(bad[name], good[name])
    # the track vector (mean over patches) is the first patch's under the erratum
    means = erratum.embed_batch(batch, lengths).means
    j = list(LAYERS).index("penultimate")
    torch.testing.assert_close(means[0, j, :200], good["penultimate"][0])
    torch.testing.assert_close(means[1, j, :200], good["penultimate"][3])
    assert "erratum" in erratum.attributes() and "erratum" not in fixed.attributes()


# ---------------------------------------------------------------------------------- musicfm

@pytest.fixture(scope="module")
def musicfm_dir(tmp_path_factory) -> Path:
    pytest.importorskip("transformers")
    return save_musicfm(tmp_path_factory.mktemp("musicfm") / "MusicFM", variant="fma")


def test_musicfm_channel_pooling_erratum_gives_one_value_per_frame_of_30s(musicfm_dir: Path) -> None:
    spec = {"type": "musicfm", "weights": str(musicfm_dir), "variant": "fma"}
    fixed = build_backend(spec)
    erratum = build_backend({**spec, "erratum_channel_pooling": True})
    # declared before loading (the gather step needs the widths): the time axis, not the hidden size
    assert fixed.layer_dims == [32] * 3
    assert erratum.layer_dims == [750] * 3
    for b in (fixed, erratum):
        b.load(torch.device("cpu"))
    waves, lengths = pad(clips(24000, [1.0, 0.5], seed=3))
    good = fixed.embed_batch(waves, lengths)
    bad = erratum.embed_batch(waves, lengths)
    assert good.means.shape == (2, 3, 32) and good.frames.tolist() == [25, 13]  # the clips' own frames
    assert bad.means.shape == (2, 3, 750) and bad.frames.tolist() == [750, 750]
    # by hand: the clip zero-padded to 30 s, every hidden state's mean over its channels
    full = torch.nn.functional.pad(waves, (0, 30 * 24000 - waves.shape[1]))
    with torch.no_grad():
        states, frames = erratum.model.hidden_states(full, torch.full((2,), 30 * 24000))
    assert frames.tolist() == [750, 750] and states[0].shape[1] == 750  # the time axis
    for layer, state in enumerate(states):
        torch.testing.assert_close(bad.means[:, layer], state.mean(dim=-1), rtol=1e-4, atol=1e-5)
    assert erratum.select(bad.means.numpy()).shape == (2, 750)
    assert erratum.attributes()["erratum"] == "channel_pooling"


# -------------------------------------------------------------------------------- music2vec


def test_music2vec_24khz_erratum_asks_for_24khz_audio(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    folder = save_music2vec(tmp_path / "m2v")
    fixed = build_backend({"type": "music2vec", "weights": str(folder)})
    erratum = build_backend({"type": "music2vec", "weights": str(folder), "erratum_24khz": True})
    assert fixed.sample_rate == 16000 and erratum.sample_rate == 24000
    assert erratum.attributes()["sample_rate"] == 24000
    for b in (fixed, erratum):
        b.load(torch.device("cpu"))
    # one second at the declared rate: 1.5x the samples, so 1.5x the 20 ms frames (49 -> 74)
    assert fixed.embed_batch(*pad(clips(fixed.sample_rate, [1.0]))).frames.tolist() == [49]
    assert erratum.embed_batch(*pad(clips(erratum.sample_rate, [1.0]))).frames.tolist() == [74]

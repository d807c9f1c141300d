"""Jukebox: what runs without OpenAI's jukebox code (not installable offline): declarations,
weight discovery and its errors, peak normalisation, and the batched prior loop on a stand-in
causal prior with jukebox's interface. The real 5B model is not exercised here (docs/backends.md)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from audiorec.backends.base import BackendError, MissingWeightsError
from audiorec.backends.jukebox import CONTEXT_SAMPLES, JukeboxBackend, peak_normalise, prior_activations
from audiorec.backends.registry import build_backend


def test_declarations() -> None:
    b = build_backend({"type": "jukebox"})
    assert isinstance(b, JukeboxBackend)
    assert b.sample_rate == 44100
    assert b.window_seconds == pytest.approx(23.777, abs=1e-3) and CONTEXT_SAMPLES == 8192 * 128
    assert b.layer_names == ["layer36"] and b.layer_dims == [4800] and b.embedding_dim == 4800
    multi = build_backend({"type": "jukebox", "layers": [72, 36], "layer": "layer72"})
    assert multi.layer_names == ["layer36", "layer72"] and multi.selected_layer_index() == 1
    with pytest.raises(BackendError, match="layers"):
        build_backend({"type": "jukebox", "layers": [0]})


def test_missing_weights_say_where_they_go(tmp_path: Path) -> None:
    b = build_backend({"type": "jukebox", "weights": str(tmp_path / "jm"), "local_files_only": True})
    with pytest.raises(MissingWeightsError, match=r"prior_level_2.pth.tar|vqvae.pth.tar") as err:
        b.load(torch.device("cpu"))
    assert "openaipublic" in str(err.value) and str(tmp_path / "jm") in str(err.value)
    with pytest.raises(MissingWeightsError):
        b.prefetch(tmp_path)  # offline: no download attempted


def test_without_jukebox_code_the_error_names_the_env(tmp_path: Path) -> None:
    for name in ("vqvae.pth.tar", "prior_level_2.pth.tar"):
        (tmp_path / name).write_bytes(b"")
    b = build_backend({"type": "jukebox", "weights": str(tmp_path)})
    try:
        import jukebox  # noqa: F401
    except ImportError:
        with pytest.raises(BackendError, match="envs/jukebox.yaml"):
            b.load(torch.device("cpu"))
    else:  # pragma: no cover - only inside envs/jukebox.yaml
        pytest.skip("jukebox is installed here")


def test_peak_normalisation() -> None:
    assert torch.equal(peak_normalise(torch.tensor([0.5, -0.25])), torch.tensor([1.0, -0.5]))
    assert torch.equal(peak_normalise(torch.zeros(3)), torch.zeros(3))


class _Attn:
    def __init__(self) -> None:
        self.cleared = 0

    def del_cache(self) -> None:
        self.cleared += 1


class _CausalBlock(nn.Module):
    """A causal self-attention block with jukebox's call signature (x, encoder_kv, sample)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(width, 3 * width)
        self.attn = _Attn()

    def forward(self, x: torch.Tensor, encoder_kv=None, sample: bool = False) -> torch.Tensor:
        assert sample and encoder_kv is None
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return x + nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)


def _stand_in_prior(width: int = 8, bins: int = 16, layers: int = 4):
    torch.manual_seed(0)
    pos = torch.randn(32, width)
    return SimpleNamespace(
        preprocess=lambda z: z, x_emb=nn.Embedding(bins, width), x_emb_dropout=nn.Identity(),
        pos_emb=lambda: pos, pos_emb_dropout=nn.Identity(), y_cond=True, width=width, start_token=None,
        transformer=SimpleNamespace(_attn_mods=[_CausalBlock(width) for _ in range(layers)]),
    )


def test_prior_loop_layers_and_padding_exactness() -> None:
    prior = _stand_in_prior()
    x_cond, y_cond = torch.randn(1, 32, 8), torch.randn(1, 1, 8)
    tokens = torch.randint(0, 16, (2, 20))
    tokens[1, 12:] = 0  # padding after a 12-token item
    reps = prior_activations(prior, tokens, x_cond.repeat(2, 1, 1), y_cond.repeat(2, 1, 1), [3, 1], fp16=False)
    assert sorted(reps) == [1, 3] and reps[3].shape == (2, 20, 8)
    assert all(m.attn.cleared == 2 for m in prior.transformer._attn_mods[:3])
    assert prior.transformer._attn_mods[3].attn.cleared == 0  # stops after the last wanted layer
    alone = prior_activations(prior, tokens[1:, :12], x_cond, y_cond, [3], fp16=False)[3]
    torch.testing.assert_close(reps[3][1:, :12], alone)
    # the first position carries the conditioning, not a token
    assert torch.equal(
        prior_activations(prior, tokens[:1, :1], x_cond, y_cond, [1], fp16=False)[1],
        prior_activations(prior, (tokens[:1, :1] + 1) % 16, x_cond, y_cond, [1], fp16=False)[1],
    )


@pytest.mark.slow
def test_matches_jukemirlib_on_the_real_model(tmp_path: Path) -> None:
    """Inside envs/jukebox.yaml with the weights in jukemirlib's cache and a >= 13 GB GPU only:
    the backend's layer-36 mean of a 24 s clip equals jukemirlib.extract's (fp32)."""
    jukemirlib = pytest.importorskip("jukemirlib")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU with >= 13 GB")
    from jukemirlib import constants

    folder = Path(constants.CACHE_DIR)
    if not all((folder / name).is_file() for name in ("vqvae.pth.tar", "prior_level_2.pth.tar")):
        pytest.skip(f"Jukebox weights not in {folder}")
    import numpy as np

    rng = np.random.default_rng(0)
    t = np.arange(24 * 44100) / 44100
    audio = (0.5 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    audio /= np.abs(audio).max()
    expected = jukemirlib.extract(audio, layers=[36], meanpool=True)[36]
    b = build_backend({"type": "jukebox", "weights": str(folder)})
    b.load(torch.device("cuda"), "fp32")
    ours = b.embed_batch(torch.from_numpy(audio)[None], torch.tensor([audio.size])).means[0, 0].numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-3, atol=1e-3)

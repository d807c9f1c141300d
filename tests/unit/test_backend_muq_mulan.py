"""MuQ-MuLan: a tiny random MuQ-MuLan saved as OpenMuQ/MuQ-MuLan-large is laid out, loaded
through the hub path with the MuQ config it names. Outputs against the `muq` package's own
MuQMuLan are checked by benchmarks/verify_upstream.py (docs/backends.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from big_backend_helpers import REVISION, clips, hf_cache, pad, save_muq_mulan

from audiorec.backends.base import MissingWeightsError
from audiorec.backends.muq_mulan import MuQMuLanBackend, is_unused
from audiorec.backends.registry import build_backend

RATE = 24000


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return save_muq_mulan(tmp_path_factory.mktemp("mulan"))


def backend_of(folders: tuple[Path, Path]) -> MuQMuLanBackend:
    b = MuQMuLanBackend({"weights": str(folders[0]), "muq_config": str(folders[1])})
    b.load(torch.device("cpu"))
    return b


def test_declares_layers_joint_last(folders: tuple[Path, Path]) -> None:
    b = MuQMuLanBackend({"weights": str(folders[0]), "muq_config": str(folders[1])})
    assert b.layer_names == ["conv_subsampling", "conformer1", "conformer2", "mulan1", "mulan2", "joint"]
    assert b.layer_dims == [32, 32, 32, 16, 16, 8]
    assert b.window_seconds == 10.0 and b.sample_rate == RATE
    published = MuQMuLanBackend({"local_files_only": True})
    assert published.layer_dims == [1024] * 13 + [768] * 8 + [512] and published.selected_layer_index() == 21


def test_batch_equals_lone_clips_and_joint_is_unit_norm(folders: tuple[Path, Path]) -> None:
    b = backend_of(folders)
    batch = clips(RATE, [2.0, 0.8, 10.0])
    out = b.embed_batch(*pad(batch))
    assert out.frames.tolist() == [50, 20, 250]
    torch.testing.assert_close(out.means[:, -1, :8].norm(dim=-1), torch.ones(3))
    for i, clip in enumerate(batch):
        lone = b.embed_batch(*pad([clip]))
        torch.testing.assert_close(lone.means[0], out.means[i], atol=2e-5, rtol=1e-4)


def test_a_short_clip_is_completed_with_its_start(folders: tuple[Path, Path]) -> None:
    """upstream's _get_all_clips: 4 s -> 4 s + its first 4 s; the means cover the 8 s"""
    b = backend_of(folders)
    x = clips(RATE, [4.0])[0]
    short = b.embed_batch(*pad([x]))
    doubled = torch.cat([torch.from_numpy(x), torch.from_numpy(x)])
    # the doubled clip is 8 s < 10 s: it would be completed again, so compare the MuQ/MuLan path directly
    with torch.inference_mode():  # as embed_batch runs it (the rotary cache is an inference tensor)
        layers, _ = b.model.layer_means(doubled[None], torch.tensor([len(doubled)]))
    torch.testing.assert_close(short.means[0, -1, :8], layers[-1][0], atol=1e-5, rtol=1e-4)


def test_hub_ids_from_hf_cache_offline(tmp_path: Path, folders: tuple[Path, Path], monkeypatch) -> None:
    cache = hf_cache(tmp_path / "hub", "OpenMuQ/MuQ-MuLan-large", folders[0])
    hf_cache(cache, "OpenMuQ/MuQ-large-msd-iter", folders[1])
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    b = build_backend({"type": "muq_mulan", "local_files_only": True})
    assert b.layer_dims[-1] == 8  # read from the cached configs
    b.load(torch.device("cpu"))
    assert b.attributes()["revision"] == REVISION


def test_missing_muq_config_says_where(tmp_path: Path, folders: tuple[Path, Path]) -> None:
    b = MuQMuLanBackend({"weights": str(folders[0]), "muq_config": str(tmp_path / "nowhere" / "x"), "local_files_only": True})
    with pytest.raises(Exception, match="nowhere"):
        b.load(torch.device("cpu"))
    with pytest.raises(MissingWeightsError):
        MuQMuLanBackend({"weights": "OpenMuQ/none-such", "local_files_only": True}).load(torch.device("cpu"))


def test_unused_keys_are_the_text_tower_loss_and_targets() -> None:
    assert is_unused("text.model.x") and is_unused("text_to_latents.weight") and is_unused("contrast.temperatures")
    assert is_unused("audio.model.model.rvq.q.0.codebook.weight")
    assert not is_unused("audio.model.model.linear.weight") and not is_unused("audio_to_latents.weight")

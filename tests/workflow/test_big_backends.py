"""Snakemake end to end with the large backends on tiny models saved in their published
layouts: a few clips of a Music4All-Onion-layout dataset at 22.05 kHz -> fetch_weights ->
embed_shard -> gather, for MERT, Music2Vec, MusicFM, EncodecMAE, CLAP, MuQ, MULE and MuQ-MuLan
in one run.

Each backend's row must equal the backend run directly on the clip resampled (soxr HQ, as
librosa.load) to the rate it declares and cut into its windows, pooled by frames: a wrong
rate, window or pooling shows up as a mismatch. Layer selection is checked against /layers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from audiorec.audio.decode import decode
from audiorec.backends.registry import build_backend
from audiorec.extraction.store import read_attrs, read_embeddings
from tests.conftest import run_workflow

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from big_backend_helpers import (  # noqa: E402
    save_clap,
    save_encodecmae,
    save_mert,
    save_mule,
    save_music2vec,
    save_musicfm,
    save_muq,
    save_muq_mulan,
)

h5py = pytest.importorskip("h5py")

CLIP_SECONDS = {"a": 2.0, "b": 1.3, "c": 5.1}  # c is longer than EncodecMAE's 4 s window
SOURCE_RATE = 22050


def make_dataset(root: Path) -> None:
    audios = root / "audios"
    audios.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, (track, seconds) in enumerate(CLIP_SECONDS.items()):
        t = np.arange(int(seconds * SOURCE_RATE)) / SOURCE_RATE
        y = 0.3 * np.sin(2 * np.pi * (220 + 110 * i) * t) + 0.03 * rng.standard_normal(t.size)
        sf.write(audios / f"{track}.wav", y.astype(np.float32), SOURCE_RATE)
    rows = ["user_id\ttrack_id\ttimestamp"] + [
        f"u{u}\t{t}\t2020-01-0{d + 1} 12:00:00" for u in range(2) for d, t in enumerate(CLIP_SECONDS)
    ]
    (root / "userid_trackid_timestamp.tsv").write_text("\n".join(rows) + "\n")


def backends(weights: Path) -> dict[str, dict[str, Any]]:
    common = {"local_files_only": True, "batch_size": 2, "device": "cpu"}
    return {
        "mert": {"type": "mert", "weights": str(save_mert(weights / "mert")), "layer": 1, **common},
        "music2vec": {"type": "music2vec", "weights": str(save_music2vec(weights / "music2vec")), **common},
        "musicfm": {"type": "musicfm", "weights": str(save_musicfm(weights / "musicfm")), "layer": "mean", **common},
        "encodecmae": {"type": "encodecmae", "weights": str(save_encodecmae(weights / "encodecmae")), **common},
        "clap": {"type": "clap", "weights": str(save_clap(weights / "clap")), "layer": "stage1", **common},
        "muq": {"type": "muq", "weights": str(save_muq(weights / "muq")), **common},
        "mule": {"type": "mule", "weights": str(save_mule(weights / "mule")), **common},
        "muq_mulan": {"type": "muq_mulan", **dict(zip(("weights", "muq_config"), map(str, save_muq_mulan(weights / "mulan")))), **common},
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    work = tmp_path_factory.mktemp("big")
    make_dataset(work / "ds")
    specs = backends(work / "weights")
    config = {
        "datasets": {"tiny": {"format": "music4all-onion", "path": str(work / "ds")}},
        "backends": specs,
        "models": {"knn": {}},
    }
    targets = [f"results/tiny/embeddings/{name}.h5" for name in specs]
    run_workflow(work, config, *targets, "--cores", "2")
    return work, specs


def direct_layers(spec: dict[str, Any], path: Path) -> np.ndarray:
    """The backend on one clip, outside the workflow: resampled to its declared rate, cut into
    its windows, per-window layer means pooled by valid frames."""
    backend = build_backend(spec)
    backend.load(torch.device("cpu"))
    # the workflow's decoder (soxr HQ, as librosa.load) rather than librosa.load itself: librosa's
    # output can be one sample longer, and CLAP's repeat-padding of a short clip depends on its
    # exact length (96000 samples repeat 5 times into 10 s; 96001 repeat 4 times + zeros)
    audio = decode(path, backend.sample_rate)
    win = int(round(backend.window_seconds * backend.sample_rate))
    pieces = [audio[s : s + win] for s in range(0, len(audio), win)]
    total, frames = 0.0, 0
    for piece in pieces:
        out = backend.embed_batch(torch.from_numpy(piece)[None], torch.tensor([len(piece)]))
        total = total + out.means[0].numpy() * int(out.frames[0])
        frames += int(out.frames[0])
    return total / frames


@pytest.mark.slow  # one Snakemake run of 12 jobs, each importing torch + transformers: minutes on 2 cores
@pytest.mark.parametrize("name", ["mert", "music2vec", "musicfm", "encodecmae", "clap", "muq", "mule", "muq_mulan"])
def test_rows_equal_the_backend_at_its_own_rate_and_windows(built, name: str) -> None:
    work, specs = built
    h5 = work / f"results/tiny/embeddings/{name}.h5"
    ids, emb = read_embeddings(h5)
    assert ids == sorted(CLIP_SECONDS)
    with h5py.File(h5, "r") as f:  # a one-layer backend (mule) stores /embeddings only
        layers = np.asarray(f["layers"][()] if "layers" in f else f["embeddings"][()][:, None], dtype=np.float32)
    backend = build_backend(specs[name])
    assert layers.shape[:2] == (3, len(backend.layer_names))
    assert np.isfinite(emb).all() and np.isfinite(layers).all()
    # /embeddings is selected from the float32 means, /layers stores them as float16
    np.testing.assert_allclose(emb, backend.select(layers), rtol=2e-3, atol=2e-3)
    attrs = read_attrs(h5)
    assert int(attrs["sample_rate"]) == {"music2vec": 16000, "mule": 16000, "clap": 48000}.get(name, 24000)
    for i, track in enumerate(ids):
        expected = direct_layers(specs[name], work / "ds" / "audios" / f"{track}.wav")
        # /layers is float16: compare at its precision
        np.testing.assert_allclose(layers[i, :, : expected.shape[-1]], expected, rtol=2e-3, atol=2e-3)

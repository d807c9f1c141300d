"""Adding a backend type is: write the module, declare it, add it to a config (README,
"Adding a backend"). In a temporary copy of the repository, a new type (`moments`: sample
moments of the waveform, two cached layers, a setting of its own) is added by exactly two
files, src/audiorec/backends/moments.{py,yaml}, and the copy's workflow runs it end to end:
schema check of its setting, extraction, gather, the layer sweep (it declares two layers),
KNN and the report. Its vectors must equal the moments computed here from the clips."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import ROOT, tiny_config

h5py = pytest.importorskip("h5py")

MODULE = '''
"""Sample moments of the waveform: a backend type added by a test."""

from typing import Any

import torch

from audiorec.backends.base import Backend, LayerMeans


class MomentsBackend(Backend):
    type_name = "moments"
    has_weights = False

    @property
    def sample_rate(self) -> int:
        return 16000

    @property
    def layer_names(self) -> list[str]:
        return ["power", "odd"]

    @property
    def layer_dims(self) -> list[int]:
        return [2, 2]

    def load(self, device: Any, precision: str = "fp32") -> None:
        self.gain = float(self.spec.get("gain", 1.0))

    def embed_batch(self, waves: Any, lengths: Any) -> LayerMeans:
        x = torch.as_tensor(waves, dtype=torch.float64) * self.gain
        n = torch.as_tensor(lengths)
        mask = (torch.arange(x.shape[1])[None] < n[:, None]).to(x.dtype)
        mean = lambda v: (v * mask).sum(1) / n.to(x.dtype)  # noqa: E731
        power = torch.stack([mean(x**2), mean(x.abs())], 1)
        odd = torch.stack([mean(x), mean(x**3)], 1)
        return LayerMeans(means=torch.stack([power, odd], 1).float(), frames=n)
'''

DECLARATION = """\
type: moments
class: audiorec.backends.moments:MomentsBackend
description: sample moments of the waveform (a test's backend)
sample_rate: 16000
window_seconds: null
weights: false
network: false
layered: true
env: extract
settings:
  gain: {type: number, exclusiveMinimum: 0, default: 1.0, description: "multiplier of the waveform"}
"""


def copy_repository(dest: Path) -> Path:
    """The repository's files (tracked and new, not ignored) as they are now."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split("\n")
    for name in filter(None, files):
        src = ROOT / name
        if src.is_file() and not name.startswith(("tests/", "benchmarks/", "docs/")):
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(src.read_bytes())
    return dest


def run(repo: Path, workdir: Path, config: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    import yaml

    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "--directory", str(workdir), *args]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=1200)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed\n{proc.stdout[-6000:]}\n{proc.stderr[-8000:]}")
    return proc


def test_a_module_and_a_declaration_make_a_backend_type(tmp_path: Path) -> None:
    repo = copy_repository(tmp_path / "repo")
    folder = repo / "src" / "audiorec" / "backends"
    (folder / "moments.py").write_text(textwrap.dedent(MODULE))
    (folder / "moments.yaml").write_text(DECLARATION)
    config = tiny_config(
        backends={"moments": {"gain": 2.0, "layer": "odd"}},
        models={"knn": {}},
        synthetic={"audio_format": "wav", "sample_rate": 16000, "n_tracks": 30, "n_users": 40},
    )
    config["layer_sweep"] = {"models": ["knn"]}
    work = tmp_path / "work"

    # the declared setting is part of the schema: a wrong value is refused before any job
    bad = {**config, "backends": {"moments": {"gain": "loud"}}}
    proc = run(repo, work, bad, "-n", check=False)
    assert proc.returncode != 0 and "backends.moments" in proc.stdout + proc.stderr

    run(repo, work, config, "--cores", "2")
    h5 = work / "results" / "tiny" / "embeddings" / "moments.h5"
    with h5py.File(h5, "r") as f:
        ids = [t.decode() if isinstance(t, bytes) else str(t) for t in f["track_ids"][()]]
        layers = np.asarray(f["layers"][()], dtype=np.float64)
        vectors = np.asarray(f["embeddings"][()], dtype=np.float64)
    assert layers.shape == (len(ids), 2, 2) and len(ids) == 30
    audios = work / "resources" / "datasets" / "tiny" / "audios"
    for i, track in enumerate(ids[:5]):
        x, rate = sf.read(audios / f"{track}.wav", dtype="float64")
        assert rate == 16000
        x = 2.0 * (x.mean(axis=1) if x.ndim == 2 else x)
        expected = np.array([[np.mean(x**2), np.mean(np.abs(x))], [np.mean(x), np.mean(x**3)]])
        np.testing.assert_allclose(layers[i], expected, rtol=1e-3, atol=1e-6)  # /layers is float16
        np.testing.assert_allclose(vectors[i], expected[1], rtol=1e-4, atol=1e-7)  # layer: odd, float32
    assert (work / "results" / "tiny" / "runs" / "knn" / "moments" / "seed0" / "metrics_test.parquet").is_file()
    assert (work / "results" / "tiny" / "layer_sweep" / "knn" / "moments" / "seed0" / "metrics.parquet").is_file()
    assert (work / "results" / "tiny" / "report" / "metrics.csv").is_file()
    log = (work / "logs" / "tiny" / "embed" / "moments" / "shard0-of-1.log").read_text()
    assert "moments" in log

"""Helpers of the large-backend tests: tiny models saved exactly as their published weights
are laid out, in a local folder or in a Hugging Face cache, and padded batches."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

REVISION = "0123456789abcdef0123456789abcdef01234567"


def hf_cache(cache_dir: Path, repo_id: str, folder: Path, revision: str = REVISION) -> Path:
    """Lay `folder`'s files out as huggingface_hub caches a download of `repo_id` (refs/main ->
    snapshots/<rev>/...), so the backend finds them through the same code path a hub id takes."""
    repo = cache_dir / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / revision
    snap.mkdir(parents=True, exist_ok=True)
    for f in folder.iterdir():
        shutil.copy(f, snap / f.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return cache_dir


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2))


def old_weight_norm_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers 5 parametrization names -> weight_g/weight_v, as the published files have them."""
    out = {}
    for k, v in state.items():
        k = k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1", "weight_v")
        out[k] = v.clone()
    return out


def clips(rate: int, seconds: list[float], seed: int = 0) -> list[np.ndarray]:
    """Noise plus a tone at distinct levels, so that normalisation and padding matter."""
    rng = np.random.default_rng(seed)
    out = []
    for i, s in enumerate(seconds):
        n = int(round(s * rate))
        t = np.arange(n) / rate
        x = 0.3 * (i + 1) * np.sin(2 * np.pi * 220 * (i + 1) * t) + 0.05 * rng.standard_normal(n) + 0.01 * i
        out.append(x.astype(np.float32))
    return out


def pad(batch: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(x) for x in batch])
    waves = torch.zeros(len(batch), int(lengths.max()))
    for i, x in enumerate(batch):
        waves[i, : len(x)] = torch.from_numpy(x)
    return waves, lengths

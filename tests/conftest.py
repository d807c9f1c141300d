"""Shared fixtures: the repository root, a runner for Snakemake on tiny configs in a temp dir."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


def snakemake_cmd(workdir: Path, *args: str) -> list[str]:
    """The snakemake command line for the repository's workflow run in `workdir`."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(ROOT / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
    ]


def run_workflow(
    workdir: Path,
    config: dict[str, Any] | None,
    *args: str,
    check: bool = True,
    timeout: float = 1800,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Write `config` as workdir/config.yaml (if given) and run snakemake there.

    On failure the output is shown in the assertion, so a failing workflow test says why.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        snakemake_cmd(workdir, *args),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode})\n--- stdout\n{proc.stdout[-8000:]}"
            f"\n--- stderr\n{proc.stderr[-12000:]}"
        )
    return proc


# --- the tiny synthetic dataset (owner: synthetic dataset; other tests build on it) ---

#: generator knobs of the `tiny` dataset: 80 tracks of 4 s, 100 users, ~6k events; seconds
#: to generate, yet the paper's split leaves non-empty val and test parts whose users and
#: tracks are in train (tests/unit/test_synthetic_log.py checks that it stays so).
TINY_SYNTHETIC: dict[str, Any] = {
    "n_tracks": 80,
    "n_users": 100,
    "events_per_user": 60,
    "tracks_per_artist": 3,
    "clip_seconds": 4.0,
}


def write_known(split_dir: Path) -> None:
    """known.parquet for hand-planted split parts: what every ranking excludes.

    The split writes the whole train window of the val/test users; planted parts have no
    listens outside train, so that is their train pairs.
    """
    import polars as pl

    from audiorec.data.split import KNOWN_SCHEMA

    train = pl.read_parquet(split_dir / "train.parquet")
    asked = pl.concat([pl.read_parquet(split_dir / f"{p}.parquet") for p in ("val", "test")])["user_id"].unique()
    known = train.filter(pl.col("user_id").is_in(asked.implode())).select("user_id", "track_id").unique()
    known.sort("user_id", "track_id").cast(KNOWN_SCHEMA).write_parquet(split_dir / "known.parquet")


def tiny_config(**overrides: Any) -> dict[str, Any]:
    """A complete workflow config whose single dataset, `tiny`, is a small synthetic one.

    Backends `oracle` and `mfcc`, models `pop` and `knn`, K = 10, seed 0. Keyword arguments
    replace whole top-level sections (`datasets`, `backends`, `models`, `evaluation`,
    `seeds`, `report`), except `synthetic` and `split`, which are merged into the tiny
    dataset's generator and split settings, e.g.
    `tiny_config(backends={"mfcc": {}}, synthetic={"audio_format": "wav"})`.
    Each call returns a fresh dict: mutate it freely.
    """
    synthetic = {**TINY_SYNTHETIC, **overrides.pop("synthetic", {})}
    split = dict(overrides.pop("split", {}))
    config: dict[str, Any] = {
        "datasets": {"tiny": {"format": "synthetic", "synthetic": synthetic, "split": split}},
        "backends": {"oracle": {}, "mfcc": {}},
        "models": {"pop": {}, "knn": {}},
        "evaluation": {"k": 10},
        "seeds": [0],
    }
    unknown = set(overrides) - {"datasets", "backends", "models", "evaluation", "seeds", "report"}
    if unknown:
        raise TypeError(f"tiny_config: unknown section(s) {sorted(unknown)}")
    config.update(copy.deepcopy(overrides))
    return config


@pytest.fixture
def tiny_cfg() -> dict[str, Any]:
    """`tiny_config()` as a fixture."""
    return tiny_config()


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `tiny` dataset generated once per session (library call, no Snakemake): a folder
    in the Music4All-Onion layout, as rule synthesize writes it. Treat it as read-only."""
    sys.path.insert(0, str(ROOT / "src"))
    from audiorec.data.synthetic import generate_dataset

    folder = tmp_path_factory.mktemp("datasets") / "tiny"
    generate_dataset(TINY_SYNTHETIC, folder, threads=2)
    return folder


@pytest.fixture(scope="session")
def musicnn_weights_dir() -> Path:
    """The real musicnn==0.1.0 wheel, downloaded from PyPI once per machine (29 MB) into
    $AUDIOREC_TEST_CACHE or ~/.cache/audiorec-test and unpacked for both variants."""
    sys.path.insert(0, str(ROOT / "src"))
    from audiorec.backends import musicnn_weights
    from audiorec.backends.base import MissingWeightsError

    root = Path(os.environ.get("AUDIOREC_TEST_CACHE", Path.home() / ".cache" / "audiorec-test")) / "musicnn"
    try:
        musicnn_weights.download_wheel(root)
        for variant in ("MSD_musicnn", "MTT_musicnn"):
            musicnn_weights.fetch_variant(root, variant)
    except MissingWeightsError as err:  # pragma: no cover - only without network
        pytest.skip(f"musicnn wheel unavailable: {err}")
    return root

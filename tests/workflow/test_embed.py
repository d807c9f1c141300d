"""Snakemake end to end on a tiny Music4All-Onion-layout dataset: tracks -> 2 MFCC shards ->
mfcc.h5 + failures table; re-run behaviour of runtime-only settings and of `layer`; the
config error for an unknown backend type."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import polars as pl
import pytest
import soundfile as sf

from audiorec.extraction.store import read_attrs, read_embeddings
from tests.conftest import run_workflow


def make_dataset(root: Path) -> None:
    audios = root / "audios"
    audios.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(5):
        t = np.arange(int(1.5 * 22050)) / 22050
        y = (np.sin(2 * np.pi * rng.uniform(100, 2000) * t) * 0.3 + 0.02 * rng.standard_normal(t.size)).astype(
            np.float32
        )
        sf.write(audios / f"trk{i}.{'mp3' if i % 2 else 'wav'}", y, 22050)
    whole = (audios / "trk1.mp3").read_bytes()
    corrupt = bytearray(whole)
    a, b = len(whole) // 4, 3 * len(whole) // 4
    corrupt[a:b] = rng.integers(0, 256, b - a, dtype=np.uint8).tobytes()
    (audios / "corrupt.mp3").write_bytes(bytes(corrupt))
    (audios / "empty.mp3").write_bytes(b"")
    rows = ["user_id\ttrack_id\ttimestamp"] + [
        f"u{u}\t{t}\t2020-01-0{d + 1} 12:00:00"
        for u in range(3)
        for d, t in enumerate(["trk0", "trk1", "trk2", "nofile"])
    ]
    (root / "userid_trackid_timestamp.tsv").write_text("\n".join(rows) + "\n")


def config(dataset: Path, **mfcc: Any) -> dict[str, Any]:
    return {
        "datasets": {"tiny": {"format": "music4all-onion", "path": str(dataset)}},
        "backends": {"mfcc": {"shards": 2, "max_fail_share": 0.5, **mfcc}},
        "models": {"knn": {}},
    }


TARGET = "results/tiny/embeddings/mfcc.h5"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    work = tmp_path_factory.mktemp("embed")
    make_dataset(work / "ds")
    cfg = config(work / "ds")
    run_workflow(work, cfg, TARGET, "--cores", "2")
    return work, cfg


def test_mfcc_embeddings_and_failures_from_two_shards(built: tuple[Path, dict[str, Any]]) -> None:
    work, _ = built
    assert (work / "results/tiny/embeddings/mfcc/shard0-of-2.h5").exists()
    assert (work / "results/tiny/embeddings/mfcc/shard1-of-2.h5").exists()
    tracks = pl.read_parquet(work / "results/tiny/tracks.parquet")
    assert tracks["track_id"].to_list() == ["corrupt", "empty", "nofile", "trk0", "trk1", "trk2", "trk3", "trk4"]
    ids, emb = read_embeddings(work / TARGET)
    assert ids == [f"trk{i}" for i in range(5)]
    assert emb.shape == (5, 104) and np.isfinite(emb).all()
    # the workflow's vectors are librosa's MFCC statistics of the same files
    y, _ = librosa.load(work / "ds/audios/trk3.mp3", sr=22050)
    m = librosa.feature.mfcc(y=y, sr=22050, n_mfcc=13)
    rows, cols = np.triu_indices(13)
    ref = np.concatenate([m.mean(1), np.cov(m)[rows, cols]])
    np.testing.assert_allclose(emb[3], ref, rtol=1e-4, atol=1e-3)
    failures = pl.read_csv(work / "results/tiny/embeddings/mfcc.failures.csv")
    assert dict(zip(failures["track_id"], failures["stage"], strict=True)) == {
        "corrupt": "decode",
        "empty": "probe",
        "nofile": "probe",
    }
    attrs = read_attrs(work / TARGET)
    assert attrs["backend_type"] == "mfcc" and attrs["dataset"] == "tiny" and attrs["n_tracks"] == 8
    assert (work / "logs/tiny/embed/mfcc/shard0-of-2.log").read_text().count("mfcc shard 0/2") >= 1


def planned_jobs(work: Path, cfg: dict[str, Any]) -> dict[str, int]:
    """Jobs a dry run would execute, from its "Job stats" table."""
    proc = run_workflow(work, cfg, TARGET, "-n", "--cores", "2")
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:")[1].split("total")[0]
    return {name: int(n) for name, n in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)}


def test_runtime_settings_rerun_nothing_and_layer_only_the_gather(built: tuple[Path, dict[str, Any]]) -> None:
    work, cfg = built
    runtime = copy.deepcopy(cfg)
    runtime["backends"]["mfcc"].update(num_workers=0, max_fail_share=0.9)
    assert planned_jobs(work, runtime) == {}
    layer = copy.deepcopy(cfg)
    layer["backends"]["mfcc"]["layer"] = "mfcc_stats"
    assert planned_jobs(work, layer) == {"embed": 1}
    batch = copy.deepcopy(cfg)
    batch["backends"]["mfcc"]["batch_size"] = 3
    assert planned_jobs(work, batch) == {"embed_shard": 2, "embed": 1}


def test_an_unknown_backend_type_is_a_config_error_listing_the_known_ones(tmp_path: Path) -> None:
    cfg = {"datasets": {"s": {"format": "synthetic"}}, "backends": {"x": {"type": "wav2vec"}}, "models": {"knn": {}}}
    proc = run_workflow(tmp_path, cfg, "-n", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "backends.x.type: 'wav2vec' is not one of [" in out
    assert all(f"'{known}'" in out for known in ("oracle", "mfcc", "musicnn", "mert", "muq"))

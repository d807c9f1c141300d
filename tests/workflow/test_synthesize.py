"""Rule synthesize on the tiny config: Snakemake in a temp dir writes the Music4All-Onion
layout, and the stages that read it (split, oracle embeddings) accept it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf

from tests.conftest import TINY_SYNTHETIC, run_workflow, tiny_config

DATASET = Path("resources/datasets/tiny")
TARGETS = [
    str(DATASET / name)
    for name in ("userid_trackid_timestamp.tsv", "id_genres.tsv", "id_information.tsv", "user_tastes.tsv", "audios")
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("synthesize")
    run_workflow(work, tiny_config(), "--cores", "2", *TARGETS)
    return work


def test_synthesize_writes_the_dataset_layout(workdir: Path) -> None:
    root = workdir / DATASET
    assert sorted(p.name for p in root.iterdir()) == [
        "audios", "id_genres.tsv", "id_information.tsv", "user_tastes.tsv", "userid_trackid_timestamp.tsv",
    ]
    log = pl.read_csv(root / "userid_trackid_timestamp.tsv", separator="\t", try_parse_dates=True)
    assert log.columns == ["user_id", "track_id", "timestamp"] and log.height > 1000
    genres = pl.read_csv(root / "id_genres.tsv", separator="\t")
    assert genres.height == TINY_SYNTHETIC["n_tracks"]
    clips = sorted((root / "audios").glob("*.mp3"))
    assert {p.stem for p in clips} == set(genres["id"])
    assert sf.info(clips[0]).duration == TINY_SYNTHETIC["clip_seconds"]
    assert "synthetic dataset ready" in (workdir / "logs" / "tiny" / "synthesize.log").read_text()
    assert (workdir / "results" / "tiny" / "benchmarks" / "synthesize.tsv").is_file()
    again = run_workflow(workdir, None, "--cores", "2", "-n", *TARGETS)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_split_and_oracle_embeddings_accept_it(workdir: Path) -> None:
    from audiorec.backends.oracle import OracleBackend
    from audiorec.extraction.store import read_embeddings

    run_workflow(workdir, None, "--cores", "2", "results/tiny/split/stats.csv", "results/tiny/embeddings/oracle.h5")
    for part in ("val", "test"):
        frame = pl.read_parquet(workdir / "results" / "tiny" / "split" / f"{part}.parquet")
        assert frame.height > 0 and frame["user_id"].n_unique() >= 5, part
    ids, vectors = read_embeddings(workdir / "results" / "tiny" / "embeddings" / "oracle.h5")
    assert len(ids) == TINY_SYNTHETIC["n_tracks"] and vectors.shape == (len(ids), 15)
    expected, failures = OracleBackend({"type": "oracle"}).compute(workdir / DATASET, ids)
    assert not failures
    np.testing.assert_allclose(vectors, expected[:, 0], rtol=1e-6)


def test_a_misspelt_knob_is_refused_before_anything_runs(tmp_path: Path) -> None:
    proc = run_workflow(tmp_path, tiny_config(synthetic={"n_user": 5}), "--cores", "1", "-n", TARGETS[0], check=False)
    assert proc.returncode != 0
    assert "n_user" in proc.stdout + proc.stderr

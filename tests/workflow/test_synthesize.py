"""Rule synthesize on the tiny config: Snakemake in a temp dir writes the Music4All-Onion layout."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import soundfile as sf

from tests.conftest import run_workflow, tiny_config

DATASET = Path("resources/datasets/tiny")
TARGETS = [
    str(DATASET / name)
    for name in ("userid_trackid_timestamp.tsv", "id_genres.tsv", "id_information.tsv", "user_tastes.tsv", "audios")
]


#: smaller than tiny_config's own dataset: this test is about the rule, not the data
KNOBS = {"n_tracks": 30, "n_users": 40, "clip_seconds": 3.0}


def test_synthesize_writes_the_dataset_layout(tmp_path: Path) -> None:
    run_workflow(tmp_path, tiny_config(synthetic=KNOBS), "--cores", "2", *TARGETS)
    root = tmp_path / DATASET
    assert sorted(p.name for p in root.iterdir()) == [
        "audios", "id_genres.tsv", "id_information.tsv", "user_tastes.tsv", "userid_trackid_timestamp.tsv",
    ]
    log = pl.read_csv(root / "userid_trackid_timestamp.tsv", separator="\t", try_parse_dates=True)
    assert log.columns == ["user_id", "track_id", "timestamp"] and log.height > 500
    genres = pl.read_csv(root / "id_genres.tsv", separator="\t")
    assert genres.height == KNOBS["n_tracks"]
    clips = sorted((root / "audios").glob("*.mp3"))
    assert {p.stem for p in clips} == set(genres["id"])
    assert sf.info(clips[0]).duration == KNOBS["clip_seconds"]
    assert "synthetic dataset ready" in (tmp_path / "logs" / "tiny" / "synthesize.log").read_text()
    assert (tmp_path / "results" / "tiny" / "benchmarks" / "synthesize.tsv").is_file()
    again = run_workflow(tmp_path, None, "--cores", "2", "-n", *TARGETS)
    assert "Nothing to be done" in again.stdout + again.stderr


def test_a_misspelt_knob_is_refused_before_anything_runs(tmp_path: Path) -> None:
    proc = run_workflow(tmp_path, tiny_config(synthetic={"n_user": 5}), "--cores", "1", "-n", TARGETS[0], check=False)
    assert proc.returncode != 0
    assert "n_user" in proc.stdout + proc.stderr

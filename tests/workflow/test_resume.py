"""Jobs killed mid-way: nothing they leave looks complete to Snakemake, and running again (a
retry in the same run, or a new run after a crash) resumes from the training checkpoint or
the finished extraction chunks and ends with exactly the outputs of an uninterrupted run.

Each test copies the session's finished run (tests/workflow/conftest.py), deletes one job's
outputs, runs that job again and kills it as soon as it has saved some progress."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_workflow
from tests.workflow.workflow_runs import (
    CORES,
    copy_workdir,
    file_difference,
    kill_job_when,
    kill_workflow_when,
    plan,
    start_workflow,
    wait_for,
)

RUN = "results/tiny/runs/shallow/oracle/seed0"
RUN_OUTPUTS = [f"{RUN}/{name}" for name in ("recs_val.parquet", "recs_test.parquet", "history.csv", "model.pt", "run.json")]
TRAIN_JOB = "train[dataset=tiny,model=shallow,backend=oracle,seed=0]"
SHARD = "results/tiny/embeddings/mfcc/shard0-of-1.h5"
EMBEDDING = "results/tiny/embeddings/mfcc.h5"


def _remove(work: Path, paths: list[str]) -> None:
    for rel in paths:
        (work / rel).unlink()


def _assert_same_as(reference: Path, work: Path, paths: list[str]) -> None:
    for rel in paths:
        why = file_difference(reference / rel, work / rel, ignore=frozenset({"resumed_from_epoch"}))
        assert why is None, f"{rel} differs from the uninterrupted run: {why}"


def _checkpoint_saved(work: Path):
    return lambda: (work / RUN / "checkpoint.pt").exists()


def test_training_killed_after_a_checkpoint_resumes_on_the_retry(finished_run: Path, tmp_path: Path) -> None:
    work = copy_workdir(finished_run, tmp_path / "work")
    _remove(work, RUN_OUTPUTS)
    proc = start_workflow(work, "--cores", str(CORES), "--retries", "1", *RUN_OUTPUTS)
    kill_job_when(proc, work, "train.py", _checkpoint_saved(work))
    out = wait_for(proc, work)

    assert "Error in rule train" in out, "the killed attempt was not seen to fail"
    info = json.loads((work / RUN / "run.json").read_text())
    assert info["resumed_from_epoch"] >= 1, f"the retry trained from scratch: {info}"
    assert "resuming from checkpoint" in (work / "logs/tiny/train/shallow/oracle/seed0.log").read_text()
    assert not (work / RUN / "checkpoint.pt").exists(), "the checkpoint outlived the finished run"
    _assert_same_as(finished_run, work, RUN_OUTPUTS)


def test_crashed_workflow_leaves_no_complete_training_output_and_a_rerun_resumes(
    finished_run: Path, tmp_path: Path
) -> None:
    work = copy_workdir(finished_run, tmp_path / "work")
    _remove(work, RUN_OUTPUTS)
    proc = start_workflow(work, "--cores", str(CORES), *RUN_OUTPUTS)
    kill_workflow_when(proc, _checkpoint_saved(work))

    assert not any((work / rel).exists() for rel in RUN_OUTPUTS), "a killed training left an output behind"
    planned = {job.key() for job in plan(work, None, *RUN_OUTPUTS)}
    assert planned == {TRAIN_JOB}, planned

    # what a user does after the Snakemake process itself died: unlock, run again
    run_workflow(work, None, "--unlock")
    wait_for(start_workflow(work, "--cores", str(CORES), *RUN_OUTPUTS), work)
    info = json.loads((work / RUN / "run.json").read_text())
    assert info["resumed_from_epoch"] >= 1, f"the re-run trained from scratch: {info}"
    _assert_same_as(finished_run, work, RUN_OUTPUTS)


def test_extraction_shard_killed_after_a_chunk_resumes_on_the_retry(finished_run: Path, tmp_path: Path) -> None:
    work = copy_workdir(finished_run, tmp_path / "work")
    _remove(work, [SHARD, EMBEDDING])
    resume = work / "results/tiny/embeddings/mfcc/.resume"

    def chunk_written() -> bool:
        return resume.is_dir() and any(p.suffix == ".h5" for p in resume.rglob("*"))

    proc = start_workflow(work, "--cores", str(CORES), "--retries", "1", EMBEDDING)
    kill_job_when(proc, work, "embed_shard.py", chunk_written)
    assert not (work / SHARD).exists(), "a killed extraction left its shard behind"
    out = wait_for(proc, work)

    assert "Error in rule embed_shard" in out, "the killed attempt was not seen to fail"
    log = (work / "logs/tiny/embed/mfcc/shard0-of-1.log").read_text()
    assert "resumed: reused" in log, log[-2000:]
    assert not resume.exists() or not any(resume.rglob("*.h5")), "resume chunks outlived the finished shard"
    _assert_same_as(finished_run, work, [SHARD, EMBEDDING])

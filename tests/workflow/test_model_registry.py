"""A model type declared in a `model_dirs` folder runs through the workflow (issue 15)."""

from __future__ import annotations

import json
import re

from tests.conftest import run_workflow
from tests.unit.test_models_registry import write_antipop
from tests.workflow.test_train import CONFIG, planned_jobs, write_inputs


def test_the_workflow_reads_a_new_declaration_schema_rules_and_inputs(tmp_path):
    """A `model_dirs` type runs through the workflow: its settings are validated (defaults
    filled in, unknown keys refused), it goes to the rule its `gpu` names, and its extra
    input (the pop run) is built first."""
    folder = write_antipop(tmp_path / "my_models")
    work = tmp_path / "work"
    write_inputs(work)
    config = {**CONFIG, "model_dirs": [str(folder)], "models": {"pop": {}, "antipop": {}}}
    target = "results/tiny/runs/antipop/none/seed0/recs_test.parquet"
    done = run_workflow(work, config, "--cores", "1", target, "--allowed-rules", "train", "train_baseline")
    assert planned_jobs(done.stdout + done.stderr) == {"train_baseline": 2}
    assert json.loads((work / "results/tiny/runs/antipop/none/seed0/run.json").read_text())["model"] == "antipop"
    bad = {**config, "models": {"pop": {}, "antipop": {"sgn": 1}}}
    out = run_workflow(work, bad, "-n", target, check=False)
    assert out.returncode != 0 and re.search(r"sgn", out.stdout + out.stderr)

"""Studies: the budget counts complete trials, a killed job resumes, the same seed gives the same trials."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import polars as pl
import pytest
from optuna.trial import TrialState

from audiorec.tuning.space import Param
from audiorec.tuning.study import (
    default_in_space,
    max_attempts,
    open_study,
    run_study,
    study_seed,
    summary,
    trials_frame,
    write_outputs,
)

SPACE = (Param("x", 0.0, 1.0), Param("n", 1, 8, integer=True))


def objective(trial: optuna.Trial) -> float:
    x, n = (p.suggest(trial) for p in SPACE)
    return -((x - 0.3) ** 2) - 0.01 * abs(n - 4)


def params(study: optuna.Study) -> list[dict]:
    return [t.params for t in study.get_trials(states=(TrialState.COMPLETE,))]


def test_same_seed_same_trials_other_seed_other_trials(tmp_path):
    a = run_study(objective, tmp_path / "a.log", "s", budget=6, seed=7)
    b = run_study(objective, tmp_path / "b.log", "s", budget=6, seed=7)
    c = run_study(objective, tmp_path / "c.log", "s", budget=6, seed=8)
    assert params(a) == params(b) and len(params(a)) == 6
    assert params(a) != params(c)


def test_seed_names_the_study_and_is_stable():
    assert study_seed("d", "shallow", "mfcc", 0) == study_seed("d", "shallow", "mfcc", 0)
    assert len({study_seed("d", "shallow", b, 0) for b in ("mfcc", "musicnn", "random")}) == 3
    # sha256 of the names, not hash(): the same in every process
    expected = int.from_bytes(hashlib.sha256(b"d\0shallow\0mfcc\x000").digest()[:4], "little")
    assert study_seed("d", "shallow", "mfcc", 0) == expected


def test_pruned_trials_count_failed_ones_are_replaced(tmp_path):
    calls = []

    def flaky(trial):
        calls.append(trial.number)
        if trial.number == 1:
            raise FloatingPointError("loss became nan")
        if trial.number == 2:
            raise optuna.TrialPruned()
        return objective(trial)

    study = run_study(flaky, tmp_path / "j.log", "s", budget=3, seed=0)
    states = [t.state for t in study.trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED, TrialState.COMPLETE]
    assert summary(study, 3, "ndcg", 50) | {"settings": None, "value": None, "trial": None} == {
        "settings": None, "value": None, "trial": None, "metric": "ndcg", "k": 50, "budget": 3,
        "n_finished": 3, "n_complete": 2, "n_pruned": 1, "n_failed": 1, "default_value": None, "default_settings": None,
    }  # fmt: skip


def test_median_pruning_after_the_warmup_epochs(tmp_path):
    """Trials report a curve; after 5 complete trials one below their median is pruned, but
    not during the warm-up epochs."""
    pruned_at = {}

    def curve(trial):
        x = SPACE[0].suggest(trial)
        level = 1.0 if trial.number < 5 else 0.1  # the 6th trial is far below the others
        for epoch in range(1, 6):
            trial.report(level * epoch, epoch)
            if trial.should_prune():
                pruned_at[trial.number] = epoch
                raise optuna.TrialPruned()
        return level * 5 + x * 0

    study = run_study(curve, tmp_path / "j.log", "s", budget=6, seed=0, warmup_epochs=3)
    assert [t.state for t in study.trials][-1] == TrialState.PRUNED and len(study.trials) == 6
    assert pruned_at == {5: 4}  # the first epoch after the 3 warm-up epochs


def test_a_space_where_everything_fails_stops_with_an_error(tmp_path):
    def broken(trial):
        raise FloatingPointError("always")

    with pytest.raises(RuntimeError, match="narrow the search space"):
        run_study(broken, tmp_path / "j.log", "s", budget=2, seed=0)
    assert len(open_study(tmp_path / "j.log", "s")[0].trials) == max_attempts(2)


def test_default_settings_run_first_and_the_report_reads_them(tmp_path):
    default = default_in_space({"x": 0.9, "n": 2, "other": 1}, SPACE)
    assert default == {"x": 0.9, "n": 2}
    assert default_in_space({"x": 1.5, "n": 2}, SPACE) is None  # outside the range: no default trial
    study = run_study(objective, tmp_path / "j.log", "s", budget=4, seed=0, default_settings=default)
    assert study.trials[0].params == {"x": 0.9, "n": 2}
    result = write_outputs(study, 4, "ndcg", 50, tmp_path / "best.json", tmp_path / "trials.csv")
    assert result["default_value"] == pytest.approx(-(0.6**2) - 0.02)
    assert json.loads((tmp_path / "best.json").read_text()) == result
    assert result["value"] == max(t.value for t in study.trials) and result["settings"] == study.best_trial.params
    trials = pl.read_csv(tmp_path / "trials.csv")
    assert trials["default"].to_list() == [True, False, False, False]
    assert trials["best_so_far"].to_list() == pytest.approx(list(pl.Series(trials["value"]).cum_max()))


def test_resumed_study_suggests_what_an_uninterrupted_one_does(tmp_path):
    whole = run_study(objective, tmp_path / "whole.log", "s", budget=6, seed=3)
    run_study(objective, tmp_path / "parts.log", "s", budget=2, seed=3)
    study, _ = open_study(tmp_path / "parts.log", "s")
    study.ask()  # a trial left RUNNING: the job was killed during it
    resumed = run_study(objective, tmp_path / "parts.log", "s", budget=6, seed=3)
    assert [t.state for t in resumed.trials].count(TrialState.FAIL) == 1
    assert params(resumed) == params(whole)


def test_other_study_name_in_the_same_journal_starts_fresh(tmp_path):
    run_study(objective, tmp_path / "j.log", "old-settings", budget=2, seed=0)
    study = run_study(objective, tmp_path / "j.log", "new-settings", budget=3, seed=0)
    assert len(study.trials) == 3


KILLED_JOB = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from test_tuning_study import objective
    from audiorec.tuning.study import run_study

    def slow_third(trial):
        if trial.number == 2:
            Path(sys.argv[1]).with_name("started").write_text("")
            time.sleep(60)
        return objective(trial)

    run_study(slow_third, sys.argv[1], "s", budget=5, seed=1)
    """
)


def test_a_killed_job_resumes_and_ends_with_exactly_the_budget(tmp_path):
    journal = tmp_path / "journal.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(optuna.__file__).parents[1]), *sys.path])}
    job = subprocess.Popen([sys.executable, "-c", KILLED_JOB, str(journal), str(Path(__file__).parent)], env=env)
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert job.poll() is None and time.monotonic() < deadline, "the job ended before its third trial"
        time.sleep(0.1)
    job.send_signal(signal.SIGKILL)
    job.wait()
    before, _ = open_study(journal, "s")
    assert [t.state for t in before.trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.RUNNING]
    study = run_study(objective, journal, "s", budget=5, seed=1)
    assert [t.state for t in study.trials].count(TrialState.COMPLETE) == 5  # the budget, as no trial was pruned
    assert study.trials[2].state == TrialState.FAIL
    assert [t.params for t in study.trials[:2]] == [t.params for t in before.trials[:2]]
    assert trials_frame(study).height == 6

"""The workflow as a whole: lint-clean, plannable from a fresh directory, and config
mistakes stop it with a clear message before any job runs."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, run_workflow


def _default_config() -> dict:
    return yaml.safe_load((ROOT / "config.yaml").read_text())


def test_lint_is_clean(tmp_path: Path) -> None:
    shutil.copy(ROOT / "config.yaml", tmp_path / "config.yaml")
    proc = run_workflow(tmp_path, None, "--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr


def test_default_config_plans_every_stage_from_a_fresh_directory(tmp_path: Path) -> None:
    proc = run_workflow(tmp_path, _default_config(), "-n", "--quiet", "rules")
    out = proc.stdout + proc.stderr
    for rule in ("synthesize", "tracks", "split", "embed", "train", "evaluate", "report"):
        assert rule in out, f"rule {rule} missing from the default plan:\n{out}"


def _plan_error(tmp_path: Path, config: dict) -> str:
    proc = run_workflow(tmp_path, config, "-n", check=False)
    assert proc.returncode != 0, "a broken config was accepted:\n" + proc.stdout
    assert "Job stats" not in proc.stdout, "jobs were planned despite the config error"
    return proc.stdout + proc.stderr


def test_unknown_backend_type_lists_the_known_ones(tmp_path: Path) -> None:
    config = _default_config()
    config["backends"]["wav2vec9"] = {"type": "wav2vec9"}  # (`clap` was the example until it became a type)
    out = _plan_error(tmp_path, config)
    assert "wav2vec9" in out
    assert "mert" in out and "musicnn" in out  # the known types are listed


def test_backend_named_after_nothing_known_needs_a_type(tmp_path: Path) -> None:
    config = _default_config()
    config["backends"]["my_embeddings"] = {}
    out = _plan_error(tmp_path, config)
    assert "my_embeddings" in out


def test_model_listing_an_unconfigured_backend(tmp_path: Path) -> None:
    config = _default_config()
    config["models"]["knn"] = {"backends": ["mfcc", "mert"]}
    out = _plan_error(tmp_path, config)
    assert "models.knn.backends" in out and "'mert'" in out


def test_unknown_model_type(tmp_path: Path) -> None:
    config = _default_config()
    config["models"]["gru4rec"] = {}
    out = _plan_error(tmp_path, config)
    assert "gru4rec" in out


@pytest.mark.parametrize("reserved", ["random", "none"])
def test_reserved_backend_names_are_refused(tmp_path: Path, reserved: str) -> None:
    config = _default_config()
    config["backends"][reserved] = {"type": "mfcc"}
    out = _plan_error(tmp_path, config)
    assert reserved in out


def test_config_typo_is_reported(tmp_path: Path) -> None:
    config = _default_config()
    config["modles"] = copy.deepcopy(config["models"])
    out = _plan_error(tmp_path, config)
    assert "modles" in out


def test_dataset_path_without_log(tmp_path: Path) -> None:
    data = tmp_path / "onion"
    (data / "audios").mkdir(parents=True)
    config = _default_config()
    config["datasets"] = {"onion": {"format": "music4all-onion", "path": str(data)}}
    out = _plan_error(tmp_path / "run", config)
    assert "userid_trackid_timestamp.tsv" in out and str(data) in out


def test_dataset_path_without_audio(tmp_path: Path) -> None:
    data = tmp_path / "onion"
    data.mkdir()
    (data / "userid_trackid_timestamp.tsv").write_text("user_id\ttrack_id\ttimestamp\n")
    config = _default_config()
    config["datasets"] = {"onion": {"format": "music4all-onion", "path": str(data)}}
    out = _plan_error(tmp_path / "run", config)
    assert "audios" in out and str(data) in out


# --- wrong types and values: the schema's complaint names the key, the real cause first ---


def _schema_error(tmp_path: Path, edit) -> str:
    config = _default_config()
    edit(config)
    out = _plan_error(tmp_path, config)
    assert "config error" in out and "schemas/config.schema.yaml" in out, out[-3000:]
    return out


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    out = _schema_error(tmp_path, lambda c: c.update(evaluation={"k": "ten"}))
    assert "evaluation.k: 'ten' is not of type 'integer'" in out


def test_value_out_of_range_in_a_model_block_is_reported_as_itself(tmp_path: Path) -> None:
    # a failing type-specific value also makes the block's other keys "unevaluated": that echo
    # (which would list every other shallow setting as unexpected) is not what the user sees
    out = _schema_error(tmp_path, lambda c: c["models"].update(shallow={"epochs": 0}))
    assert "models.shallow.epochs: 0 is less than the minimum of 1" in out
    assert "Unevaluated" not in out and "lr_patience" not in out


def test_misspelt_backend_setting_is_an_error(tmp_path: Path) -> None:
    out = _schema_error(tmp_path, lambda c: c["backends"].update(mfcc={"n_mfc": 20}))
    assert "backends.mfcc" in out and "'n_mfc' was unexpected" in out


def test_misspelt_model_setting_is_an_error(tmp_path: Path) -> None:
    out = _schema_error(tmp_path, lambda c: c["models"].update(knn={"backend": ["mfcc"]}))
    assert "models.knn" in out and "'backend' was unexpected" in out


def test_bad_date_names_the_key(tmp_path: Path) -> None:
    out = _schema_error(tmp_path, lambda c: c["datasets"]["synthetic"].update(split={"test_start": "20-02-2020"}))
    assert "datasets.synthetic.split.test_start: '20-02-2020' does not match" in out


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    def edit(c: dict) -> None:
        c["seeds"] = [-1]
        c["backends"]["mfcc"] = {"shards": 0}

    out = _schema_error(tmp_path, edit)
    assert "seeds.0: -1 is less than the minimum of 0" in out
    assert "backends.mfcc.shards: 0 is less than the minimum of 1" in out


def test_oracle_settings_are_declared(tmp_path: Path) -> None:
    """The oracle's own settings pass the schema (every backend key must be declared)."""
    config = _default_config()
    config["backends"]["oracle"] = {"columns": ["genre", "tempo"], "numeric_weight": 0.3}
    proc = run_workflow(tmp_path, config, "-n", "--quiet", "rules")
    assert proc.returncode == 0

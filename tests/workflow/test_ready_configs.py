"""The ready configs of configs/ load through the workflow (dry runs, nothing executed):
configs/onion.yaml as its README command runs it (`--replace-workflow-config`), against a stand-in
of the Music4All-Onion folder, and it stays the paper's setting wherever the paper is not an erratum."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import ROOT
from tests.workflow.workflow_runs import plan, plan_keys

ONION = ROOT / "configs" / "onion.yaml"


def _stand_in_onion(workdir: Path) -> None:
    """resources/datasets/onion with an (empty) log, audio folder and MFCC table: enough to plan."""
    raw = workdir / "resources" / "datasets" / "onion"
    (raw / "audios").mkdir(parents=True)
    (raw / "userid_trackid_timestamp.tsv").write_text("user_id\ttrack_id\ttimestamp\n")
    (raw / "id_mfcc_stats.tsv").write_text("id\n")


def test_onion_config_plans_every_backend_and_model(tmp_path):
    _stand_in_onion(tmp_path)
    config = yaml.safe_load(ONION.read_text())
    keys = plan_keys(plan(tmp_path, None, "--configfile", str(ONION), "--replace-workflow-config"))
    # only the paper's dataset: the default config's synthetic one is replaced, not merged
    assert not [k for k in keys if "dataset=synthetic" in k]
    for backend in config["backends"]:
        assert f"embed[dataset=onion,backend={backend}]" in keys, backend
    for model in config["models"]:
        assert any(f"model={model}," in k for k in keys), model


def test_onion_config_is_the_paper_where_the_paper_is_not_an_erratum():
    config = yaml.safe_load(ONION.read_text())
    text = ONION.read_text()
    backends = config["backends"]
    assert backends["mfcc"] == {"source": "dataset"}  # §2.1: the dataset's MFCC statistics
    assert backends["mfcc-audio"] == {"type": "mfcc", "source": "audio"}
    assert backends["musicfm"]["variant"] == "fma"  # the checkpoint the published code loads
    assert backends["musicfm-msd"] == {"type": "musicfm", "variant": "msd"}
    # every erratum is fixed (no erratum setting on) and each fix is marked next to it
    flat = yaml.safe_dump(config)
    assert "erratum_" not in flat
    assert config["datasets"]["onion"]["split"]["history"] == "all"
    for setting in (
        "erratum_first_patch",
        "erratum_24khz",
        "erratum_channel_pooling",
        "erratum_inverted_freeze",
        "erratum_any_negatives",
        "erratum_predict_last_50",
        "history: train_window",
    ):
        comments = [line.split("#", 1)[1] for line in text.splitlines() if "#" in line]
        assert any(setting in c for c in comments), f"{setting}: no comment names the setting that restores it"
    assert text.count("FIX:") >= 6


ERRATA = ROOT / "configs" / "errata.yaml"


def test_errata_config_merges_into_the_default_and_plans_its_pairs(tmp_path):
    """configs/errata.yaml as docs/report.md runs it (merged into config.yaml): every pair passes the
    workflow's check (its copies of config.yaml's models still match), its erratum runs are planned,
    and BERT4Rec stays off the second split."""
    (tmp_path / "config.yaml").write_text((ROOT / "config.yaml").read_text())
    keys = plan_keys(plan(tmp_path, None, "--configfile", str(ERRATA)))
    assert "errata_report[dataset=synthetic]" in keys
    errata = yaml.safe_load(ERRATA.read_text())["errata"]
    assert len({p["name"] for p in errata}) == len(errata) >= 9
    for pair in errata:
        for side in ("fixed", "erratum"):
            run = pair[side]
            rule = "train_baseline" if run["model"] in ("pop", "knn") else "train"
            assert f"{rule}[dataset={run['dataset']},model={run['model']},backend={run['backend']},seed=0]" in keys
    assert not [k for k in keys if "dataset=synthetic-history,model=bert4rec" in k]


def test_onion_2026_config_plans_both_protocols_probes_and_the_sweep(tmp_path):
    _stand_in_onion(tmp_path)
    (tmp_path / "resources" / "datasets" / "onion" / "id_genres.tsv").write_text("id\tgenres\n")
    path = ROOT / "configs" / "onion_2026.yaml"
    config = yaml.safe_load(path.read_text())
    keys = plan_keys(plan(tmp_path, None, "--configfile", str(path), "--replace-workflow-config"))
    assert not [k for k in keys if "dataset=synthetic" in k]
    for backend in config["backends"]:
        assert f"embed[dataset=onion,backend={backend}]" in keys, backend
        assert f"probe[dataset=onion,backend={backend}]" in keys, backend
    for model in config["models"]:
        for dataset in ("onion", "onion-cold"):
            assert any(f"dataset={dataset},model={model}," in k for k in keys), (dataset, model)
    assert any(k.startswith("probe_report[") for k in keys)
    assert any(k.startswith("layer_sweep") for k in keys)


def test_tuning_config_merges_into_the_default_and_plans_a_study_per_backend(tmp_path):
    """configs/tuning.yaml as docs/models.md runs it (merged into config.yaml): one study per tuned
    model x backend (random included), the tuned runs, the tuning report; its tuned models are
    copies of config.yaml's (so the report pairs them with their untuned twins)."""
    (tmp_path / "config.yaml").write_text((ROOT / "config.yaml").read_text())
    path = ROOT / "configs" / "tuning.yaml"
    keys = plan_keys(plan(tmp_path, None, "--configfile", str(path)))
    tuning = yaml.safe_load(path.read_text())
    default = yaml.safe_load((ROOT / "config.yaml").read_text())
    backends = [*default["backends"], "random"]
    for model in tuning["tuning"]["models"]:
        twin = tuning["models"][model]["type"]
        assert {k: v for k, v in tuning["models"][model].items() if k != "type"} == default["models"][twin]
        for backend in backends:
            assert f"tune[dataset=synthetic,model={model},backend={backend}]" in keys
            assert f"train[dataset=synthetic,model={model},backend={backend},seed=0]" in keys
    assert "tuning_report[dataset=synthetic]" in keys

"""The Errata section through Snakemake on the tiny synthetic dataset: a split-history pair across
two datasets on the same data (`same_data_as`) and a Shallow Net erratum pair on one split, then
the config checks that keep a pair honest (both runs configured, differing by erratum settings
only, switched on on the erratum side)."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import run_workflow, tiny_config

HIST = "tiny-hist"
SHALLOW = {"type": "shallow", "epochs": 2, "batch_size": 256, "backends": ["oracle"], "random_baseline": False,
           "datasets": ["tiny"]}


def errata_config() -> dict:
    config = tiny_config(
        backends={"oracle": {}},
        models={
            "knn": {},
            "shallow": dict(SHALLOW),
            "shallow-any-neg": {**SHALLOW, "erratum_any_negatives": True},
        },
    )
    config["datasets"][HIST] = {"same_data_as": "tiny", "split": {"history": "train_window"}}
    config["errata"] = [
        {
            "name": "history",
            "fixed": {"dataset": "tiny", "model": "knn", "backend": "oracle"},
            "erratum": {"dataset": HIST, "model": "knn", "backend": "oracle"},
        },
        {
            "name": "any_negatives",
            "fixed": {"dataset": "tiny", "model": "shallow", "backend": "oracle"},
            "erratum": {"dataset": "tiny", "model": "shallow-any-neg", "backend": "oracle"},
        },
    ]
    return config


def test_errata_section_of_a_tiny_experiment(tmp_path: Path) -> None:
    config = errata_config()
    # the errata section only: it needs the four runs of its pairs, no other run and no report
    run_workflow(tmp_path, config, "--cores", "2", "results/tiny/report/errata.md")
    report = tmp_path / "results" / "tiny" / "report"
    assert not (report / "metrics.csv").exists() and not (tmp_path / f"results/{HIST}/runs/shallow").exists()
    table = pl.read_csv(report / "errata.csv")
    assert set(table["erratum"]) == {"history", "any_negatives"}
    assert not (tmp_path / "results" / HIST / "report" / "errata.md").exists()  # reported with the fixed runs
    assert table.filter(pl.col("erratum") == "history")["settings"].unique().to_list() == [
        f"datasets.{HIST}.split.history: train_window"
    ]
    assert table.filter(pl.col("erratum") == "any_negatives")["settings"].unique().to_list() == [
        "models.shallow-any-neg.erratum_any_negatives: true"
    ]
    # the history pair: over the users both splits evaluate; the same-split pair: all of them
    for name, cross in (("history", True), ("any_negatives", False)):
        rows = table.filter((pl.col("erratum") == name) & (pl.col("split") == "test"))
        n, n_fixed, n_erratum = rows.row(0, named=True)["n_users"], rows["n_users_fixed"][0], rows["n_users_erratum"][0]
        assert 0 < n <= min(n_fixed, n_erratum)
        if not cross:
            assert n == n_fixed == n_erratum
        # the difference is fixed - erratum of the two runs' own metrics over those users
        fixed = pl.read_parquet(tmp_path / f"results/tiny/runs/{'knn' if cross else 'shallow'}/oracle/seed0/metrics_test.parquet")
        other = "results/tiny-hist/runs/knn" if cross else "results/tiny/runs/shallow-any-neg"
        erratum = pl.read_parquet(tmp_path / f"{other}/oracle/seed0/metrics_test.parquet")
        both = fixed.join(erratum, on="user_id", suffix="_e")
        assert len(both) == n
        ndcg = rows.filter((pl.col("metric") == "ndcg") & (pl.col("test") == "paired_t"))["mean_diff"][0]
        assert ndcg == pytest.approx((both["ndcg"] - both["ndcg_e"]).mean())
    md = (report / "errata.md").read_text()
    assert "| **history** |" in md and "| **any_negatives** |" in md
    # changing only the errata pairs re-runs only the errata report
    config["errata"] = config["errata"][:1]
    proc = run_workflow(tmp_path, config, "-n", "results/tiny/report/errata.md")
    planned = set(re.findall(r"^rule (\w+):", proc.stdout + proc.stderr, flags=re.M)) - {"all"}
    assert planned == {"errata_report"}


def test_a_models_datasets_list_chooses_where_it_runs(tmp_path: Path) -> None:
    config = errata_config()
    out = run_workflow(tmp_path, config, "-n").stdout
    trained = set(re.findall(r"wildcards: dataset=([\w-]+), model=([\w-]+), backend=oracle, seed=0", out))
    assert trained == {("tiny", "knn"), (HIST, "knn"), ("tiny", "shallow"), ("tiny", "shallow-any-neg")}
    config["models"]["knn"]["datasets"] = ["elsewhere"]
    proc = run_workflow(tmp_path, config, "-n", check=False)
    assert proc.returncode != 0 and "models.knn.datasets lists 'elsewhere'" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["errata"][1]["erratum"].update(model="nope"), "is not a configured model"),
        (lambda c: c["errata"][1]["erratum"].update(backend="random"), "is not one of model shallow-any-neg's backends"),
        (lambda c: c["models"]["shallow-any-neg"].update(margin=0.5), "margin"),
        (lambda c: c["errata"][1]["fixed"].update(dataset=HIST), "does not run on dataset tiny-hist"),
        (lambda c: c["datasets"][HIST]["split"].update(val_share=0.3), "split.val_share"),
        (lambda c: c["errata"][1].update(fixed=c["errata"][1]["erratum"], erratum=c["errata"][1]["fixed"]), "erratum_any_negatives (True vs False)"),
        (lambda c: c["errata"].append(dict(c["errata"][0])), "used twice"),
    ],
)
def test_a_pair_that_is_not_one_erratum_is_refused(tmp_path: Path, change, message: str) -> None:
    config = errata_config()
    change(config)
    proc = run_workflow(tmp_path, config, "-n", check=False)
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr, proc.stdout + proc.stderr

"""The report's Tuning section (docs/models.md, "Tuning"): what each study found and what it is worth.

Per study (dataset x tuned model x backend): the best settings, the trials it took (finished =
complete + pruned, equal to the budget for every backend, as the table shows; failed),
and the tuning metric on validation of the configured settings (the study's first trial) and of
the best trial. On test: the tuned runs' metrics (Table 3 layout), and where the config has an
untuned twin of a tuned model (same type and settings, not tuned) the paired per-user test of
tuned vs default, computed exactly like the Errata section's (audiorec.report.errata).
Validation numbers of the best trial are optimistic (the maximum over `budget` tries); the test
columns are the honest comparison.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

from audiorec.evaluation.metric_names import METRICS  # noqa: E402
from audiorec.io import atomic_path, write_csv, write_text  # noqa: E402
from audiorec.report.aggregate import ReportSettings  # noqa: E402
from audiorec.report.errata import (  # noqa: E402
    LABELS,
    ErratumPair,
    RunRef,
    compare_errata,
    load_runs,
)

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def study_of(path: PathLike) -> tuple[str, str, str]:
    """(dataset, model, backend) of results/{dataset}/tuning/{model}/{backend}/<file>."""
    parts = Path(path).parts
    if len(parts) < 5 or parts[-4] != "tuning":
        raise ValueError(f"{path}: not under results/{{dataset}}/tuning/{{model}}/{{backend}}/")
    return parts[-5], parts[-3], parts[-2]


def studies_table(best_files: list[PathLike]) -> pl.DataFrame:
    """One row per study from its best.json."""
    rows = []
    for path in best_files:
        dataset, model, backend = study_of(path)
        best = json.loads(Path(path).read_text())
        default = best.get("default_value")
        rows.append(
            {
                "dataset": dataset,
                "model": model,
                "backend": backend,
                "metric": best["metric"],
                "k": best["k"],
                "budget": best["budget"],
                "n_finished": best["n_finished"],
                "n_complete": best["n_complete"],
                "n_pruned": best["n_pruned"],
                "n_failed": best["n_failed"],
                "val_default": default,
                "val_tuned": best["value"],
                "val_gain": None if default is None else best["value"] - default,
                "best_trial": best["trial"],
                "settings": json.dumps(best["settings"], sort_keys=True),
                "default_settings": None if best.get("default_settings") is None else json.dumps(best["default_settings"], sort_keys=True),
            }
        )
    return pl.DataFrame(rows, infer_schema_length=None)


def best_so_far(trials: pl.DataFrame) -> list[float | None]:
    """The best complete trial's value after each finished trial (complete or pruned: the ones
    the budget counts; failed ones are left out)."""
    finished = trials.filter(pl.col("state").is_in(["COMPLETE", "PRUNED"])).sort("trial")
    values = finished.select(pl.when(pl.col("state") == "COMPLETE").then(pl.col("value")).cum_max().forward_fill())
    return values.to_series().to_list()


def tuned_vs_default(
    studies: pl.DataFrame, pairs: dict[str, str], metric_files: list[PathLike], settings: ReportSettings
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(test means of every tuned run: model, backend, one column per metric; the paired tests
    tuned - default of each tuned run with an untuned twin: errata.csv's columns, `fixed` = tuned)."""
    runs = load_runs(metric_files) if metric_files else {}
    means = []
    compared: list[ErratumPair] = []
    for row in studies.iter_rows(named=True):
        ref = RunRef(row["dataset"], row["model"], row["backend"])
        if ref not in runs:
            continue
        test = runs[ref].filter(pl.col("split") == "test")
        means.append({"model": ref.model, "backend": ref.backend, **{m: float(test[m].mean()) for m in METRICS}})
        twin = RunRef(ref.dataset, pairs.get(ref.model, ""), ref.backend)
        if twin in runs:
            compared.append(ErratumPair(name=f"{ref.model}/{ref.backend}", fixed=ref, erratum=twin))
    tests = compare_errata(compared, runs, settings) if compared else pl.DataFrame()
    if not tests.is_empty():
        tests = tests.filter(pl.col("split") == "test").rename(
            {"erratum": "study", "fixed_run": "tuned_run", "erratum_run": "default_run", "mean_fixed": "mean_tuned", "mean_erratum": "mean_default"}
        )
    return pl.DataFrame(means, infer_schema_length=None), tests


def _fmt(value: Any, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def tuning_markdown(studies: pl.DataFrame, means: pl.DataFrame, tests: pl.DataFrame, settings: ReportSettings, dataset: str) -> str:
    lines = [f"# Tuning ({dataset})", ""]
    if studies.is_empty():
        return "\n".join(lines + ["_No study._"]) + "\n"
    metric, k = studies["metric"][0], studies["k"][0]
    lines += [
        (
            f"Every backend of a model got the same budget of finished (complete or pruned) trials. Validation {LABELS.get(metric, metric)}@{k}: "
            "the configured settings (the first trial; – where they lie outside the space) and the best trial "
            "(optimistic: the best of the budget). Test: the tuned runs below."
        ),
        "",
        "| Model | Backend | finished / budget | pruned | failed | val default | val tuned | best settings |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in studies.iter_rows(named=True):
        best = ", ".join(f"{name}={_short(v)}" for name, v in json.loads(r["settings"]).items())
        lines.append(
            f"| {r['model']} | {r['backend']} | {r['n_finished']} / {r['budget']} | {r['n_pruned']} | {r['n_failed']} "
            f"| {_fmt(r['val_default'])} | {_fmt(r['val_tuned'])} | {best} |"
        )
    if not means.is_empty():
        chosen = tests.filter(pl.col("test") == settings.test) if not tests.is_empty() else tests
        lines += [
            "",
            "## Table 3 with tuned runs (test)",
            "",
            (
                f"Mean over test users at K={k} of each tuned run; where an untuned twin is configured, in brackets its "
                f"mean and ▲/▼ where tuned − default is significant (`{settings.test}`, Holm over the tuned runs, "
                f"α = {settings.alpha}). The tuning metric's interval and p-values: tuning.csv."
            ),
            "",
            "| Model | Backend | " + " | ".join(f"{LABELS.get(m, m)}@{k}" for m in METRICS) + " |",
            "|---|---|" + "---|" * len(METRICS),
        ]
        for r in means.iter_rows(named=True):
            cells = []
            for m in METRICS:
                cell = _fmt(r[m])
                found = chosen.filter((pl.col("study") == f"{r['model']}/{r['backend']}") & (pl.col("metric") == m)) if not chosen.is_empty() else chosen
                if not found.is_empty():
                    t = found.row(0, named=True)
                    p = t["p_adjusted"]
                    mark = (" ▲" if t["mean_diff"] > 0 else " ▼") if p is not None and p < settings.alpha else ""
                    cell += f" ({_fmt(t['mean_default'])}){mark}"
                cells.append(cell)
            lines.append(f"| {r['model']} | {r['backend']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def curves_figure(trial_files: list[PathLike], path: PathLike) -> None:
    """Best-so-far validation value per finished trial: one panel per model, a line per backend."""
    curves: dict[str, dict[str, list[float]]] = {}
    for file in trial_files:
        _, model, backend = study_of(file)
        curves.setdefault(model, {})[backend] = best_so_far(pl.read_csv(file))
    models = sorted(curves) or ["(no study)"]
    fig, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 3.5), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        for backend, values in sorted(curves.get(model, {}).items()):
            ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=backend)
        ax.set_title(model)
        ax.set_xlabel("finished trials")
        ax.set_ylabel("best validation value so far")
        if curves.get(model):
            ax.legend(fontsize="small")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def build_tuning_report(
    best_files: list[PathLike],
    trial_files: list[PathLike],
    metric_files: list[PathLike],
    pairs: dict[str, str],
    settings: ReportSettings,
    dataset: str,
    csv_path: PathLike,
    md_path: PathLike,
    figure_path: PathLike,
) -> pl.DataFrame:
    """tuning.csv (one row per study, with the tuned-vs-default test of the tuning metric where
    there is one), tuning.md and the best-so-far figure."""
    studies = studies_table(best_files)
    means, tests = tuned_vs_default(studies, pairs, metric_files, settings)
    table = studies
    if not tests.is_empty():
        wanted = tests.filter(pl.col("test") == settings.test).with_columns(
            pl.col("study").str.split("/").list.get(0).alias("model"), pl.col("study").str.split("/").list.get(1).alias("backend")
        )
        wanted = wanted.join(studies.select("model", "backend", "metric"), on=["model", "backend", "metric"], how="semi")
        table = studies.join(
            wanted.select(
                "model", "backend", "default_run", pl.col("mean_default").alias("test_default"), pl.col("mean_tuned").alias("test_tuned"),
                pl.col("mean_diff").alias("test_diff"), pl.col("ci_low").alias("test_ci_low"), pl.col("ci_high").alias("test_ci_high"),
                pl.col("test").alias("test_name"), "p_value", "p_adjusted",
            ),
            on=["model", "backend"], how="left",
        )  # fmt: skip
    write_csv(table, csv_path)
    write_text(tuning_markdown(studies, means, tests, settings, dataset), md_path)
    curves_figure(trial_files, figure_path)
    log.info("%d studies, %d tuned runs on test, %d compared with an untuned twin", studies.height, means.height, tests["study"].n_unique() if not tests.is_empty() else 0)
    return table

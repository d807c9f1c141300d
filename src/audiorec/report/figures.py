"""The report's figures (PNG, matplotlib's Agg backend: no display needed on a cluster node)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from audiorec.evaluation.metric_names import METRICS  # noqa: E402
from audiorec.io import atomic_path  # noqa: E402
from audiorec.report.aggregate import Catalogue, ReportSettings  # noqa: E402
from audiorec.report.tables import backend_label, model_label  # noqa: E402

METRIC_LABELS = {"hitrate": "HR", "recall": "Recall", "ndcg": "NDCG", "mrr": "MRR", "precision": "Precision"}
DPI = 110


def _save(fig: plt.Figure, path: str | os.PathLike[str]) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format="png")
    plt.close(fig)


def _colours(backends: list[str]) -> dict[str, tuple[float, ...]]:
    cmap = plt.get_cmap("tab10" if len(backends) <= 10 else "tab20")
    return {b: cmap(i % cmap.N) for i, b in enumerate(backends)}


def _models(frame: pl.DataFrame, catalogue: Catalogue) -> tuple[list[str], list[str]]:
    """(recommender models, popularity models) in config order."""
    models = sorted(frame["model"].unique().to_list(), key=catalogue.model_key)
    pops = [m for m in models if catalogue.model_types.get(m) == "pop"]
    return [m for m in models if m not in pops] or pops, pops if len(pops) < len(models) else []


def metric_bars(
    summary: pl.DataFrame, settings: ReportSettings, catalogue: Catalogue, split: str, path: str | os.PathLike[str]
) -> None:
    """A panel per metric × model: one bar per backend with its 95% interval; pop as a dashed line."""
    part = summary.filter(pl.col("split") == split)
    models, pops = _models(part, catalogue)
    backends = sorted(part["backend"].unique().to_list(), key=catalogue.backend_key)
    colours = _colours(backends)
    fig, axes = plt.subplots(
        len(METRICS), len(models), figsize=(2.2 + 2.6 * len(models), 2.1 * len(METRICS)), squeeze=False
    )
    for col, model in enumerate(models):
        own = part.filter(pl.col("model") == model)
        model_backends = [b for b in backends if b in own["backend"].to_list()]
        for row, metric in enumerate(METRICS):
            ax = axes[row, col]
            cells = {r["backend"]: r for r in own.filter(pl.col("metric") == metric).iter_rows(named=True)}
            means = np.array([cells[b]["mean"] for b in model_backends])
            low = np.array([cells[b]["ci_low"] if cells[b]["ci_low"] is not None else cells[b]["mean"] for b in model_backends])
            high = np.array([cells[b]["ci_high"] if cells[b]["ci_high"] is not None else cells[b]["mean"] for b in model_backends])
            x = np.arange(len(model_backends))
            ax.bar(x, means, color=[colours[b] for b in model_backends])
            ax.errorbar(x, means, yerr=[means - low, high - means], fmt="none", ecolor="black", capsize=3, lw=1)
            for pop in pops:
                cell = part.filter((pl.col("model") == pop) & (pl.col("metric") == metric))
                if len(cell):
                    ax.axhline(cell["mean"][0], ls="--", color="grey", lw=1, label=model_label(pop, catalogue))
            ax.set_xticks(x, [backend_label(b, catalogue) for b in model_backends], rotation=45, ha="right", fontsize=8)
            if row != len(METRICS) - 1:
                ax.tick_params(labelbottom=False)
            if col == 0:
                ax.set_ylabel(f"{METRIC_LABELS[metric]}@{settings.k}")
            if row == 0:
                ax.set_title(model_label(model, catalogue))
            if row == 0 and col == len(models) - 1 and pops:
                ax.legend(fontsize=7, loc="best")
            ax.set_ylim(bottom=0)
    fig.suptitle(f"{split} split: mean over users with 95% t interval")
    _save(fig, path)


def per_user_distributions(
    averaged: pl.DataFrame,
    settings: ReportSettings,
    catalogue: Catalogue,
    split: str,
    path: str | os.PathLike[str],
    metrics: tuple[str, ...] = ("ndcg", "recall", "hitrate"),
) -> None:
    """Share of users reaching at least x, per backend: the whole distribution, zeros included.

    Most users of a top-K evaluation score 0, which flattens box or violin plots; a
    survival curve shows both the share of users with any hit (its value just above 0)
    and how far the rest get.
    """
    part = averaged.filter(pl.col("split") == split)
    models, _ = _models(part, catalogue)
    backends = sorted(part["backend"].unique().to_list(), key=catalogue.backend_key)
    colours = _colours(backends)
    fig, axes = plt.subplots(
        len(metrics), len(models), figsize=(2.2 + 3.0 * len(models), 2.4 * len(metrics)), squeeze=False
    )
    for col, model in enumerate(models):
        own = part.filter(pl.col("model") == model)
        for row, metric in enumerate(metrics):
            ax = axes[row, col]
            for backend in backends:
                values = own.filter(pl.col("backend") == backend)[metric].to_numpy()
                if values.size == 0:
                    continue
                ordered = np.sort(values)
                xs = np.unique(ordered)
                share = 1.0 - np.searchsorted(ordered, xs, side="left") / ordered.size  # share >= xs[j]
                if xs[0] > 0:
                    xs, share = np.concatenate([[0.0], xs]), np.concatenate([[1.0], share])
                # "pre": share >= x is share[j] for every x in (xs[j-1], xs[j]].
                ax.step(xs, share, where="pre", color=colours[backend], label=backend_label(backend, catalogue), lw=1.2)
            ax.set_ylim(0, 1.02)
            ax.set_xlim(left=0)
            ax.set_xlabel(f"{METRIC_LABELS[metric]}@{settings.k} (per user, mean over seeds)", fontsize=8)
            if col == 0:
                ax.set_ylabel("share of users ≥ x")
            if row == 0:
                ax.set_title(model_label(model, catalogue))
                ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{split} split: per-user metric distributions")
    fig.tight_layout()
    _save(fig, path)


def mir_vs_recs(
    summary: pl.DataFrame, mir: pl.DataFrame, settings: ReportSettings, catalogue: Catalogue, path: str | os.PathLike[str]
) -> None:
    """A panel per MIR task: published MIR score (x) against our test HR@K (y), a series per model."""
    hr = summary.filter((pl.col("split") == "test") & (pl.col("metric") == "hitrate"))
    models, _ = _models(hr, catalogue)
    tasks = [c for c in mir.columns if c not in ("type", "name")]
    fig, axes = plt.subplots(1, len(tasks), figsize=(1.0 + 3.6 * len(tasks), 3.6), squeeze=False)
    markers = "osD^vP*X"
    plotted = False
    for col, task in enumerate(tasks):
        ax = axes[0, col]
        for i, model in enumerate(models):
            xs, ys, names = [], [], []
            for r in hr.filter(pl.col("model") == model).iter_rows(named=True):
                score = mir.filter(pl.col("type") == catalogue.backend_type(r["backend"]))[task]
                if len(score) and score[0] is not None:
                    xs.append(score[0])
                    ys.append(r["mean"])
                    names.append(r["backend"])
            if xs:
                plotted = True
                ax.scatter(xs, ys, marker=markers[i % len(markers)], label=model_label(model, catalogue))
                for x, y, name in zip(xs, ys, names, strict=True):
                    ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(f"{task} (published)")
        if col == 0:
            ax.set_ylabel(f"HR@{settings.k}, test")
        ax.set_title(task)
    if plotted:
        axes[0, 0].legend(fontsize=7)
    else:
        axes[0, 0].text(0.5, 0.5, "no configured backend has published MIR scores", ha="center", transform=axes[0, 0].transAxes)
    fig.suptitle("Published MIR scores vs recommendation hit rate")
    fig.tight_layout()
    _save(fig, path)


def accuracy_vs_novelty(
    summary: pl.DataFrame,
    settings: ReportSettings,
    catalogue: Catalogue,
    path: str | os.PathLike[str],
    split: str = "test",
    accuracy: str = "ndcg",
) -> None:
    """One point per run (model × backend): mean novelty (x) against mean accuracy (y), both
    with their 95% intervals; a marker per model, a colour per backend."""
    part = summary.filter(pl.col("split") == split)
    models = sorted(part["model"].unique().to_list(), key=catalogue.model_key)
    backends = sorted(part["backend"].unique().to_list(), key=catalogue.backend_key)
    colours = _colours(backends)
    markers = "osD^vP*X<>"
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for i, model in enumerate(models):
        for backend in backends:
            cells = {
                r["metric"]: r
                for r in part.filter((pl.col("model") == model) & (pl.col("backend") == backend)).iter_rows(named=True)
            }
            if "novelty" not in cells or accuracy not in cells:
                continue
            x, y = cells["novelty"], cells[accuracy]
            xerr = [[x["mean"] - (x["ci_low"] if x["ci_low"] is not None else x["mean"])], [(x["ci_high"] or x["mean"]) - x["mean"]]]
            yerr = [[y["mean"] - (y["ci_low"] if y["ci_low"] is not None else y["mean"])], [(y["ci_high"] or y["mean"]) - y["mean"]]]
            ax.errorbar(x["mean"], y["mean"], xerr=xerr, yerr=yerr, fmt=markers[i % len(markers)], color=colours[backend],
                        ecolor=colours[backend], elinewidth=0.8, capsize=2, ms=7)
            ax.annotate(f"{model}/{backend}", (x["mean"], y["mean"]), fontsize=7, xytext=(4, 3), textcoords="offset points")
    handles = [plt.Line2D([], [], ls="", marker=markers[i % len(markers)], color="grey", label=model_label(m, catalogue))
               for i, m in enumerate(models)]
    handles += [plt.Line2D([], [], ls="", marker="s", color=colours[b], label=backend_label(b, catalogue)) for b in backends]
    ax.legend(handles=handles, fontsize=7, loc="best")
    ax.set_xlabel(f"Novelty@{settings.k} (bits, mean self-information)")
    ax.set_ylabel(f"{METRIC_LABELS.get(accuracy, accuracy)}@{settings.k}")
    ax.set_title(f"{split} split: accuracy vs novelty, one point per run (95% intervals)")
    fig.tight_layout()
    _save(fig, path)

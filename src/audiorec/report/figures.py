"""The report's figures (PNG, matplotlib's Agg backend: no display needed on a cluster node)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from audiorec.evaluation.metric_names import METRICS
from audiorec.io import atomic_path
from audiorec.report.aggregate import Catalogue, ReportSettings
from audiorec.report.tables import backend_label, model_label

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
    """A panel per metric × model: one bar per backend with its interval (`report.confidence`); pop
    as a dashed line."""
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
    fig.suptitle(f"{split} split: mean over users with {settings.confidence * 100:g}% t interval")
    _save(fig, path)


def wilson_interval(hits: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval of a binomial share: unlike the normal approximation it stays in
    [0, 1] and is sensible for shares near 0 or 1 and for few users."""
    from scipy.stats import norm

    if n == 0:
        return (float("nan"), float("nan"))
    z = float(norm.ppf(0.5 + confidence / 2))
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def per_user_distributions(
    averaged: pl.DataFrame,
    settings: ReportSettings,
    catalogue: Catalogue,
    split: str,
    path: str | os.PathLike[str],
    metrics: tuple[str, ...] = ("ndcg", "recall", "hitrate"),
) -> None:
    """Per metric, the form that says something about users.

    NDCG and recall: the share of users reaching at least x, per backend (a survival curve):
    most users of a top-K evaluation score 0, which flattens box or violin plots; the curve
    shows both the share with any hit (its value just above 0) and how far the rest get.
    HR@K is 0 or 1 per user (with one seed), so its curve is a flat line: it is drawn as what it
    is, the share of users with a hit, with a Wilson interval at `report.confidence` (users
    whose seed-averaged HR lies strictly between 0 and 1 count as the share of their seeds).
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
            if metric == "hitrate":
                _hit_shares(ax, own, backends, colours, settings, catalogue)
            else:
                _survival(ax, own, metric, backends, colours, settings, catalogue)
            if row == 0:
                ax.set_title(model_label(model, catalogue))
                if metric != "hitrate":
                    ax.legend(fontsize=7, loc="upper right")
            if col == 0 and metric != "hitrate":
                ax.set_ylabel("share of users ≥ x")
    fig.suptitle(f"{split} split: per-user metric distributions")
    fig.tight_layout()
    _save(fig, path)


def _survival(ax, own: pl.DataFrame, metric: str, backends, colours, settings: ReportSettings, catalogue: Catalogue) -> None:
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


def _hit_shares(ax, own: pl.DataFrame, backends, colours, settings: ReportSettings, catalogue: Catalogue) -> None:
    shown = [b for b in backends if own.filter(pl.col("backend") == b).height]
    for y, backend in enumerate(shown):
        values = own.filter(pl.col("backend") == backend)["hitrate"].to_numpy()
        n = values.size
        share = float(values.mean())
        low, high = wilson_interval(int(round(share * n)), n, settings.confidence)
        ax.errorbar(
            share, y, xerr=[[share - low], [high - share]], fmt="o", color=colours[backend], capsize=3, ms=5
        )
    ax.set_yticks(range(len(shown)), [backend_label(b, catalogue) for b in shown], fontsize=7)
    ax.set_ylim(-0.6, len(shown) - 0.4)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel(
        f"share of users with a hit (HR@{settings.k}), {settings.confidence * 100:g}% Wilson interval", fontsize=8
    )


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

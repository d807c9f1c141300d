"""Report section "MIR vs recommendation": does probe quality order backends as recommendation does?

Per backend the probe score of the layer the recommenders use (`configured`) on each task's
primary metric sits next to each model's test metric at K. Across backends (`random` left
out: for the neural models it names learned vectors, not the probe's random vectors) Kendall's
tau and Spearman's rho relate each task to each model, with percentile bootstrap intervals
that resample tracks for the probe (its stored out-of-fold predictions) and users for the
recommender (paired over backends). The probe scores are also correlated with the published
Table 4 numbers where a backend type has both. Imports `audiorec.report` (which imports
nothing of probes), so the import direction stays one way.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from scipy.stats import kendalltau, spearmanr

from ..io import atomic_path, write_csv, write_text
from ..report.collect import load_per_user, seed_average
from ..report.reference import read_mir_scores
from .metrics import PRIMARY, scores

log = logging.getLogger(__name__)

RANDOM = "random"
#: our task -> the Table 4 column it corresponds to
TABLE4_TASKS = {"genres": "genres", "genre": "genres", "tags": "tags", "key": "key"}


@dataclass(frozen=True)
class CompareSettings:
    k: int = 50
    metric: str = "ndcg"
    n_boot: int = 200
    confidence: float = 0.95
    seed: int = 0


def _corr(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan"), float("nan")
    return float(kendalltau(a, b).statistic), float(spearmanr(a, b).statistic)


def load_probe_scores(paths: list[str | os.PathLike[str]]) -> pl.DataFrame:
    frames = [pl.read_csv(p, schema_overrides={"layer_index": pl.Int64, "alphas": pl.String}) for p in paths]
    return pl.concat(frames, how="diagonal_relaxed")


def primary_scores(probes: pl.DataFrame) -> pl.DataFrame:
    """backend, task, kind, metric, value of the configured layer on each task's primary metric."""
    primary = pl.DataFrame({"kind": list(PRIMARY), "metric": list(PRIMARY.values())})
    return probes.filter(pl.col("configured")).join(primary, on=["kind", "metric"]).select("backend", "task", "kind", "metric", "value")


def _boot_probe(pred: pl.DataFrame, kind: str, metric: str, idx: np.ndarray) -> np.ndarray:
    truth = np.asarray(pred["truth"].to_list(), dtype=np.float64)
    guess = np.asarray(pred["pred"].to_list(), dtype=np.float64)
    return np.asarray([scores(kind, truth[i], guess[i])[metric] for i in idx])


def compare(
    probe_scores: list[str], probe_predictions: list[str], run_metrics: list[str], mir_scores: str | None,
    backend_types: dict[str, str], settings: CompareSettings,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(side-by-side table, correlations with bootstrap intervals, correlations with Table 4)."""
    rng = np.random.default_rng(settings.seed)
    probes = primary_scores(load_probe_scores(probe_scores))
    per_user = seed_average(load_per_user(run_metrics)).filter(pl.col("split") == "test")
    recs = per_user.group_by("model", "backend").agg(pl.col(settings.metric).mean().alias("rec")).sort("model", "backend")
    side = probes.join(recs, on="backend", how="left").sort("task", "backend", "model")
    backends = sorted(set(probes["backend"]) - {RANDOM})
    # bootstrap replicates of every backend's probe score (tracks) ...
    preds = {Path(p).parent.name: pl.read_parquet(p) for p in probe_predictions}
    probe_boot: dict[tuple[str, str], np.ndarray] = {}
    for row in probes.iter_rows(named=True):
        if row["backend"] not in preds:
            continue
        layer = load_probe_scores([p for p in probe_scores if Path(p).parent.name == row["backend"]]).filter(pl.col("configured"))["layer"][0]
        pred = preds[row["backend"]].filter((pl.col("layer") == layer) & (pl.col("task") == row["task"]))
        idx = rng.integers(0, len(pred), size=(settings.n_boot, len(pred)))
        probe_boot[(row["backend"], row["task"])] = _boot_probe(pred, row["kind"], row["metric"], idx)
    # ... and of every run's mean metric (users, the same resample for every backend of a model)
    corr_rows = []
    alpha = (1 - settings.confidence) / 2
    for model in sorted(set(recs["model"])):
        users = per_user.filter(pl.col("model") == model).pivot(on="backend", index="user_id", values=settings.metric)
        have = [b for b in backends if b in users.columns]
        if len(have) < 3:
            continue
        u = users.select(have).to_numpy()
        uidx = rng.integers(0, len(u), size=(settings.n_boot, len(u)))
        rec_boot = np.stack([u[i].mean(axis=0) for i in uidx])  # [B, backends]
        rec_point = u.mean(axis=0)
        for task in sorted(set(probes["task"])):
            task_scores = dict(probes.filter(pl.col("task") == task).select("backend", "value").iter_rows())
            if not all(b in task_scores for b in have):
                continue
            point = _corr(np.asarray([task_scores[b] for b in have]), rec_point)
            boots = np.asarray([
                _corr(np.asarray([probe_boot[(b, task)][i] for b in have]), rec_boot[i]) for i in range(settings.n_boot)
            ])
            row = {"model": model, "task": task, "metric": f"{settings.metric}@{settings.k}", "backends": len(have),
                   "kendall_tau": point[0], "spearman_rho": point[1]}
            for j, name in enumerate(("kendall_tau", "spearman_rho")):
                finite = boots[:, j][np.isfinite(boots[:, j])]
                row[f"{name}_low"] = float(np.quantile(finite, alpha)) if len(finite) else float("nan")
                row[f"{name}_high"] = float(np.quantile(finite, 1 - alpha)) if len(finite) else float("nan")
            corr_rows.append(row)
    table4_rows = []
    try:
        published = read_mir_scores(mir_scores)
    except Exception as exc:  # a missing optional reference table: say so, compare nothing
        log.warning("no Table 4 comparison: %s", exc)
        published = None
    if published is not None:
        for task, column in TABLE4_TASKS.items():
            if column not in published.columns or task not in set(probes["task"]):
                continue
            ours = dict(probes.filter(pl.col("task") == task).select("backend", "value").iter_rows())
            ref = dict(published.select("type", column).drop_nulls().iter_rows())
            pairs = [(ours[b], ref[backend_types[b]]) for b in ours if backend_types.get(b) in ref]
            a, b = np.asarray([p[0] for p in pairs]), np.asarray([p[1] for p in pairs])
            tau, rho = _corr(a, b)
            table4_rows.append({"task": task, "table4": column, "backends": len(pairs), "kendall_tau": tau, "spearman_rho": rho})
    return side, pl.DataFrame(corr_rows), pl.DataFrame(table4_rows)


def figure(side: pl.DataFrame, path: str | os.PathLike[str], metric: str) -> None:
    """Probe score (x) vs recommendation metric (y), one point per backend; one panel per model × task."""
    models = sorted(set(side.drop_nulls("model")["model"]))
    tasks = sorted(set(side["task"]))[:6]
    fig, axes = plt.subplots(max(1, len(models)), max(1, len(tasks)), figsize=(2.8 * max(1, len(tasks)), 2.5 * max(1, len(models))), squeeze=False)
    for i, model in enumerate(models):
        for j, task in enumerate(tasks):
            ax = axes[i][j]
            sub = side.filter((pl.col("model") == model) & (pl.col("task") == task))
            ax.scatter(sub["value"].to_list(), sub["rec"].to_list())
            for r in sub.iter_rows(named=True):
                ax.annotate(r["backend"], (r["value"], r["rec"]), fontsize=7)
            ax.set_title(f"{model}: {task}", fontsize=8)
            if j == 0:
                ax.set_ylabel(metric)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp)
    plt.close(fig)


def best_layers(probe_scores: list[str]) -> pl.DataFrame:
    """Per backend and task, the layer with the best primary probe score (and the configured one)."""
    probes = load_probe_scores(probe_scores)
    primary = pl.DataFrame({"kind": list(PRIMARY), "metric": list(PRIMARY.values())})
    rows = probes.join(primary, on=["kind", "metric"]).sort("value", descending=True)
    best = rows.group_by("backend", "task", maintain_order=True).first().select("backend", "task", pl.col("layer").alias("best_layer"), pl.col("value").alias("best_value"))
    configured = rows.filter(pl.col("configured")).select("backend", "task", pl.col("layer").alias("configured_layer"), pl.col("value").alias("configured_value"))
    return best.join(configured, on=["backend", "task"], how="left").sort("backend", "task")


def probe_vs_sweep(probe_best: pl.DataFrame, sweep_csv: str | os.PathLike[str]) -> pl.DataFrame:
    """Per backend, task and swept model: the best layer by probe next to the best layer by the
    layer sweep (layer_sweep.csv's `best`: highest validation metric of the recommender), and
    whether they are the same (issue 17: "the same?"). Backends in both only."""
    sweep = pl.read_csv(sweep_csv)
    missing = {"model", "backend", "layer_name", "best", "split", "metric", "mean"} - set(sweep.columns)
    if missing:
        raise ValueError(f"{sweep_csv}: not a layer_sweep.csv (no columns {sorted(missing)}); re-run layer_sweep_report")
    best = (
        sweep.filter(pl.col("best") & (pl.col("split") == "val"))
        .group_by("model", "backend", maintain_order=True)
        .first()
        .select("backend", "model", pl.col("layer_name").alias("best_layer_by_sweep"))
    )
    joined = probe_best.select("backend", "task", pl.col("best_layer").alias("best_layer_by_probe")).join(best, on="backend")
    return joined.with_columns((pl.col("best_layer_by_probe") == pl.col("best_layer_by_sweep")).alias("same")).select(
        "backend", "task", "best_layer_by_probe", "model", "best_layer_by_sweep", "same"
    ).sort("backend", "model", "task")


def _md(frame: pl.DataFrame) -> str:
    if frame.is_empty():
        return "(none)\n"
    rows = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in r] for r in frame.rows()]
    return "\n".join(["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)] + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def build(
    side: pl.DataFrame, corr: pl.DataFrame, table4: pl.DataFrame, csv: str, md: str, fig: str, settings: CompareSettings,
    layers: pl.DataFrame | None = None, versus_sweep: pl.DataFrame | None = None,
) -> None:
    write_csv(corr, csv)
    wide = side.drop_nulls("model").pivot(on="model", index=["task", "metric", "backend", "value"], values="rec")
    text = (
        "# MIR vs recommendation\n\n"
        f"Probe score of the configured layer (primary metric per task) next to each model's test {settings.metric}@{settings.k}.\n\n"
        + _md(wide)
        + f"\n## Rank correlation across backends (without random), {settings.confidence:.0%} bootstrap intervals\n\n"
        + _md(corr)
        + "\n## Our probe scores vs the published Table 4\n\n"
        + _md(table4)
        + ("\n## Best layer by probe (compare with layer_sweep.md's best layer by recommendation)\n\n" + _md(layers) if layers is not None else "")
        + (
            "\n## Best layer: probe vs layer sweep\n\n"
            "Per backend and probe task, the layer with the best probe score next to the layer the layer sweep "
            "picks for each swept model (highest validation metric); `same`: whether they agree.\n\n" + _md(versus_sweep)
            if versus_sweep is not None else ""
        )
    )
    write_text(text, md)
    figure(side, fig, f"{settings.metric}@{settings.k}")

"""The layer sweep's report: a table per layer, the best layer per backend, metric vs layer.

Aggregated like metrics.csv (docs/report.md): each user's metric is averaged over seeds,
then the mean and a Student-t interval over users are taken. The best layer of a model x
backend is the one with the highest *validation* mean of the chosen metric (ties: the
earlier layer); its *test* mean is then an honest estimate, and it is compared with the
configured layer on the same test users by a paired t-test. The learned mixture of all layers
(`weighted`, trained models only) is a row of its own, compared with the best single layer the
same way; it is never itself "the best layer" (that names a `layer:` setting one can choose).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from ..evaluation.metric_names import METRICS
from ..evaluation.stats import mean_ci, paired_t_test
from ..io import atomic_path, write_csv, write_text
from ..report.aggregate import Catalogue
from ..report.tables import backend_label, model_label

log = logging.getLogger(__name__)

WEIGHTED = "weighted"  # the learned mixture's row (analysis.layer_sweep.WEIGHTED_LAYER)
METRIC_LABELS = {"hitrate": "HR", "recall": "Recall", "ndcg": "NDCG", "mrr": "MRR", "precision": "Precision"}
_SEED = re.compile(r"^seed(\d+)$")


@dataclass(frozen=True)
class SweepReportSettings:
    k: int = 50
    metric: str = "ndcg"
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"layer_sweep.metric must be one of {METRICS}, got {self.metric!r}")


def load_sweeps(paths: list[str | os.PathLike[str]]) -> pl.DataFrame:
    """Per-user rows of every sweep file, with model, backend and seed from its path
    (`layer_sweep/{model}/{backend}/seed{n}/metrics.parquet`)."""
    if not paths:
        raise ValueError("the layer sweep report got no sweep files; set layer_sweep.models")
    frames = []
    for path in map(Path, paths):
        seed = _SEED.match(path.parent.name)
        if seed is None or len(path.parts) < 4:
            raise ValueError(f"{path}: not a layer sweep file (expected .../{{model}}/{{backend}}/seed{{n}}/metrics.parquet)")
        frame = pl.read_parquet(path)
        frames.append(
            frame.with_columns(
                pl.lit(path.parent.parent.parent.name).alias("model"),
                pl.lit(path.parent.parent.name).alias("backend"),
                pl.lit(int(seed.group(1)), dtype=pl.Int64).alias("seed"),
            )
        )
    return pl.concat(frames, how="vertical_relaxed")


def summarise_sweeps(per_user: pl.DataFrame, settings: SweepReportSettings) -> pl.DataFrame:
    """layer_sweep.csv: one row per model x backend x layer x split x metric, best layer flagged."""
    keys = ["model", "backend", "layer", "layer_name", "configured", "split"]
    averaged = per_user.group_by(*keys, "user_id").agg(
        *[pl.col(m).mean() for m in METRICS], pl.col("seed").n_unique().alias("n_seeds")
    )
    rows = []
    for key, group in averaged.group_by(keys):
        values = dict(zip(keys, key, strict=True))
        for metric in METRICS:
            ci = mean_ci(group[metric].to_numpy(), settings.confidence)
            rows.append(
                {**values, "metric": metric, "k": settings.k, "mean": ci.mean, "ci_low": ci.ci_low,
                 "ci_high": ci.ci_high, "n_users": ci.n, "n_seeds": int(group["n_seeds"].max())}
            )
    schema = {
        "model": pl.String, "backend": pl.String, "layer": pl.Int64, "layer_name": pl.String,
        "configured": pl.Boolean, "split": pl.String, "metric": pl.String, "k": pl.Int64, "mean": pl.Float64,
        "ci_low": pl.Float64, "ci_high": pl.Float64, "n_users": pl.Int64, "n_seeds": pl.Int64,
    }
    frame = pl.DataFrame(rows, schema=schema)
    best = best_layers(frame, settings.metric)
    frame = frame.join(best.select("model", "backend", pl.col("layer_name").alias("_best")), on=["model", "backend"])
    frame = frame.with_columns((pl.col("layer_name") == pl.col("_best")).alias("best")).drop("_best")
    order = pl.col("metric").replace_strict(list(METRICS), list(range(len(METRICS))))
    return frame.sort("model", "backend", pl.col("layer").fill_null(10**9), "split", order)


def best_layers(summary: pl.DataFrame, metric: str) -> pl.DataFrame:
    """Per model x backend: the layer with the highest validation mean of `metric` (ties: the
    earlier layer, the mean over layers last). The learned mixture is not a candidate."""
    val = summary.filter((pl.col("split") == "val") & (pl.col("metric") == metric) & (pl.col("layer_name") != WEIGHTED))
    if val.is_empty():
        raise ValueError("the layer sweep has no validation results to pick a best layer from")
    return (
        val.sort("model", "backend", pl.col("mean"), pl.col("layer").fill_null(10**9), descending=[False, False, True, False])
        .group_by("model", "backend", maintain_order=True)
        .first()
        .select("model", "backend", "layer", "layer_name", pl.col("mean").alias("val_mean"))
    )


def _cell(summary: pl.DataFrame, model: str, backend: str, layer_name: str, split: str, metric: str) -> dict | None:
    rows = summary.filter(
        (pl.col("model") == model) & (pl.col("backend") == backend) & (pl.col("layer_name") == layer_name)
        & (pl.col("split") == split) & (pl.col("metric") == metric)
    )
    return rows.row(0, named=True) if rows.height else None


def _fmt_ci(cell: dict | None) -> str:
    if cell is None:
        return "–"
    if cell["ci_low"] is None:
        return f"{cell['mean']:.4f}"
    return f"{cell['mean']:.4f} [{cell['ci_low']:.4f}, {cell['ci_high']:.4f}]"


def _user_vector(per_user: pl.DataFrame, model: str, backend: str, layer_name: str, metric: str) -> pl.DataFrame:
    return (
        per_user.filter(
            (pl.col("model") == model) & (pl.col("backend") == backend) & (pl.col("layer_name") == layer_name)
            & (pl.col("split") == "test")
        )
        .group_by("user_id")
        .agg(pl.col(metric).mean())
        .sort("user_id")
    )


def _paired_delta(
    per_user: pl.DataFrame, model: str, backend: str, first: str, second: str, metric: str, confidence: float
) -> str:
    """Test mean of `first` minus `second` on the same users, with the paired t-test's p."""
    a = _user_vector(per_user, model, backend, first, metric)
    b = _user_vector(per_user, model, backend, second, metric)
    if not a["user_id"].equals(b["user_id"]) or a.height < 2:
        return "–"
    t = paired_t_test(a[metric].to_numpy(), b[metric].to_numpy(), confidence)
    return f"{t.mean_diff:+.4f} (p = {t.p_value:.3g})"


def sweep_markdown(
    summary: pl.DataFrame, per_user: pl.DataFrame, settings: SweepReportSettings, catalogue: Catalogue, dataset: str
) -> str:
    """layer_sweep.md: the best layer per model x backend (on validation), beside the configured one."""
    metric, k = settings.metric, settings.k
    label = f"{METRIC_LABELS[metric]}@{k}"
    best = best_layers(summary, metric)
    mixed = summary.filter(pl.col("layer_name") == WEIGHTED).height > 0
    header = [
        "Model", "Backend", "Layers", f"Best layer (val {label})", f"test {label}, best layer",
        "Configured layer", f"test {label}, configured", "Δ test (best − configured)",
    ] + ([f"test {label}, weighted (learned mixture)", "Δ test (weighted − best)"] if mixed else [])
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in best.sort(
        pl.col("model").map_elements(lambda m: catalogue.model_key(m)[0], return_dtype=pl.Int64),
        pl.col("backend").map_elements(lambda b: catalogue.backend_key(b)[0], return_dtype=pl.Int64),
    ).iter_rows(named=True):
        model, backend = row["model"], row["backend"]
        own = summary.filter((pl.col("model") == model) & (pl.col("backend") == backend))
        n_layers = own.filter(pl.col("layer").is_not_null())["layer_name"].n_unique()
        configured = own.filter(pl.col("configured"))["layer_name"].unique().to_list()
        conf_name = configured[0] if configured else None
        best_name = row["layer_name"]
        best_text = f"**{best_name}**" + (f" (#{row['layer']})" if row["layer"] is not None else "")
        best_text += f": {row['val_mean']:.4f}"
        delta = "–"
        if conf_name is not None and conf_name != best_name:
            delta = _paired_delta(per_user, model, backend, best_name, conf_name, metric, settings.confidence)
        elif conf_name == best_name:
            delta = "0 (same layer)"
        cells = [
            model_label(model, catalogue), backend_label(backend, catalogue), str(n_layers), best_text,
            _fmt_ci(_cell(summary, model, backend, best_name, "test", metric)),
            conf_name or "–",
            _fmt_ci(_cell(summary, model, backend, conf_name, "test", metric)) if conf_name else "–",
            delta,
        ]
        if mixed:
            weighted = _cell(summary, model, backend, WEIGHTED, "test", metric)
            cells += [
                _fmt_ci(weighted),
                _paired_delta(per_user, model, backend, WEIGHTED, best_name, metric, settings.confidence) if weighted else "–",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    n_users = sorted(set(summary.filter(pl.col("split") == "test")["n_users"].to_list()))
    notes = [
        f"The best layer is picked on the validation split by {label}; its test value is then unbiased by the choice.",
        "Layers are read from the embedding cache (`/layers`, float16), so every layer of a backend is compared at "
        "the same precision; `mean` is the mean over all layers (the `layer: mean` setting) where widths agree.",
        *(["`weighted`: the model trained on a softmax-weighted sum of all layers, the weights learned with it "
           "(the `layers: weighted` model setting; the weights are in the sweep's sweep.json); Δ against the best "
           "single layer on the same test users."] if mixed else []),
        f"Means over {', '.join(map(str, n_users))} test users with {settings.confidence * 100:g}% t intervals; "
        "Δ: paired t-test on the same test users. Every layer, split and metric: layer_sweep.csv; the curves: "
        "figures/layer_sweep.png.",
    ]
    return f"# {dataset}: layer sweep\n\n" + "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def sweep_figure(summary: pl.DataFrame, settings: SweepReportSettings, catalogue: Catalogue, path: str | os.PathLike[str]) -> None:
    """A panel per model x backend: the metric (val and test, 95% band) against the layer index."""
    metric = settings.metric
    part = summary.filter(pl.col("metric") == metric)
    models = sorted(part["model"].unique().to_list(), key=catalogue.model_key)
    backends = sorted(part["backend"].unique().to_list(), key=catalogue.backend_key)
    fig, axes = plt.subplots(
        len(models), len(backends), figsize=(0.6 + 3.4 * len(backends), 0.6 + 2.8 * len(models)), squeeze=False
    )
    colours = {"val": "tab:blue", "test": "tab:orange"}
    for r, model in enumerate(models):
        for c, backend in enumerate(backends):
            ax = axes[r, c]
            own = part.filter((pl.col("model") == model) & (pl.col("backend") == backend))
            if own.is_empty():
                ax.set_axis_off()
                continue
            layers = own.filter(pl.col("layer").is_not_null())
            names = layers.sort("layer")["layer_name"].unique(maintain_order=True).to_list()
            for split in ("val", "test"):
                line = layers.filter(pl.col("split") == split).sort("layer")
                x = line["layer"].to_numpy()
                mean = line["mean"].to_numpy()
                low = line["ci_low"].fill_null(line["mean"]).to_numpy()
                high = line["ci_high"].fill_null(line["mean"]).to_numpy()
                ax.plot(x, mean, marker="o", ms=3, color=colours[split], label=split)
                ax.fill_between(x, low, high, color=colours[split], alpha=0.15, lw=0)
                pooled = own.filter(pl.col("layer").is_null() & (pl.col("split") == split))
                for name, style, text in (("mean", "--", "mean of layers"), (WEIGHTED, "-.", "weighted (learned)")):
                    point = pooled.filter(pl.col("layer_name") == name)
                    if point.height:
                        ax.axhline(point["mean"][0], ls=style, lw=1, color=colours[split], label=f"{split}, {text}")
            configured = layers.filter(pl.col("configured"))
            if configured.height:
                ax.axvline(configured["layer"][0], ls=":", color="grey", lw=1, label="configured")
            best = layers.filter(pl.col("best") & (pl.col("split") == "val"))
            if best.height:
                ax.plot(best["layer"], best["mean"], marker="*", ms=12, color="tab:red", ls="none", label="best (val)")
            if len(names) <= 8:
                ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
            ax.set_xlabel("layer")
            ax.set_title(f"{model_label(model, catalogue)} · {backend_label(backend, catalogue)}", fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{METRIC_LABELS[metric]}@{settings.k}")
            if r == 0 and c == len(backends) - 1:
                ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"Layer sweep: {METRIC_LABELS[metric]}@{settings.k} per cached layer (mean, 95% t band)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def build_sweep_report(
    sweep_files: list[str | os.PathLike[str]],
    csv_path: str | os.PathLike[str],
    md_path: str | os.PathLike[str],
    figure_path: str | os.PathLike[str],
    settings: SweepReportSettings,
    catalogue: Catalogue,
    dataset: str,
) -> pl.DataFrame:
    per_user = load_sweeps(sweep_files)
    summary = summarise_sweeps(per_user, settings)
    write_csv(summary, csv_path)
    write_text(sweep_markdown(summary, per_user, settings, catalogue, dataset), md_path)
    sweep_figure(summary, settings, catalogue, figure_path)
    for row in best_layers(summary, settings.metric).iter_rows(named=True):
        log.info("%s/%s: best layer %s (val %s %.4f)", row["model"], row["backend"], row["layer_name"], settings.metric, row["val_mean"])
    return summary

"""gains.csv and figures/gains.png: what each way of using content adds over the same
recommender without content, on warm and on cold tracks (docs/report.md, "Gains").

Which pairs (one per run with content, per protocol):
- the neural ways (`items: content | hybrid | finetune` of shallow, bert4rec, sasrec) against
  the collaborative-only version of the same model type: its `items: id` run (the `random`
  backend of the same instance when it has one, else of the first instance of the type in the
  config that has one);
- content2cf, contrastive and cmf against `ials` (the collaborative factors without content).
KNN (no collaborative-only version) and `matched_random` (a noise control, not a way of using
content) have no gain. A gain is the mean over users of the per-user difference (the users
both runs ranked), with a paired percentile-bootstrap interval over users
(`report.bootstrap_resamples`, seeded per pair, so adding a model changes no other interval).

Warm and cold come from two datasets on the same data: a `warm` one and its `cold_items`
sibling (`same_data_as`); the warm one names the outputs.
"""

from __future__ import annotations

import logging
import os
import zlib
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from audiorec.evaluation.metric_names import METRICS  # noqa: E402
from audiorec.evaluation.stats import paired_bootstrap_ci  # noqa: E402
from audiorec.io import atomic_path, write_csv  # noqa: E402
from audiorec.report.aggregate import LEARNED_BASELINE, Catalogue  # noqa: E402
from audiorec.report.collect import load_per_user, seed_average  # noqa: E402
from audiorec.report.tables import backend_label, model_label  # noqa: E402

log = logging.getLogger(__name__)

NEURAL_TYPES = ("shallow", "bert4rec", "sasrec")
NEURAL_WAYS = ("content", "hybrid", "finetune")
CF_TYPES = ("content2cf", "contrastive", "cmf")  # collaborative-only version: the `ials` instance
CF_BASE = ("ials", "none")
PROTOCOLS = ("warm", "cold")
COLUMNS = {
    "protocol": pl.String, "model": pl.String, "way": pl.String, "backend": pl.String, "base_model": pl.String,
    "base_backend": pl.String, "metric": pl.String, "k": pl.Int64, "mean": pl.Float64, "base_mean": pl.Float64,
    "gain": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64, "relative": pl.Float64, "n_users": pl.Int64,
}  # fmt: skip


@dataclass(frozen=True)
class GainSettings:
    k: int = 50
    resamples: int = 2000
    confidence: float = 0.95
    seed: int = 0
    metric: str = "ndcg"  # the figure's metric (gains.csv has every accuracy metric)


@dataclass(frozen=True)
class Pair:
    model: str
    way: str
    backend: str
    base_model: str
    base_backend: str


def way_of(model: str, catalogue: Catalogue) -> str | None:
    """The way a model instance uses content, or None when it has no gain to show."""
    mtype = catalogue.model_types.get(model, model)
    if mtype in CF_TYPES:
        return mtype
    mode = catalogue.model_ways.get(model, "").split(",")[0].strip()
    return mode if mtype in NEURAL_TYPES and mode in NEURAL_WAYS else None


def plan_pairs(runs: set[tuple[str, str]], catalogue: Catalogue) -> list[Pair]:
    """Every (content run, collaborative-only run) pair present in `runs` ((model, backend))."""
    models = sorted({m for m, _ in runs}, key=catalogue.model_key)
    id_runs: dict[str, str] = {}  # model type -> the first instance with an items: id run
    for model in models:
        mtype = catalogue.model_types.get(model, model)
        if (model, LEARNED_BASELINE) in runs and mtype in NEURAL_TYPES:
            id_runs.setdefault(mtype, model)
    pairs = []
    for model in models:
        way = way_of(model, catalogue)
        if way is None:
            continue
        mtype = catalogue.model_types.get(model, model)
        if mtype in CF_TYPES:
            base = CF_BASE if CF_BASE in runs else None
        else:
            owner = model if (model, LEARNED_BASELINE) in runs else id_runs.get(mtype)
            base = (owner, LEARNED_BASELINE) if owner else None
        if base is None:
            continue
        backends = sorted((b for m, b in runs if m == model and b != LEARNED_BASELINE), key=catalogue.backend_key)
        pairs += [Pair(model, way, b, *base) for b in backends]
    return pairs


def _users(averaged: pl.DataFrame, model: str, backend: str, metric: str) -> pl.DataFrame:
    return averaged.filter((pl.col("model") == model) & (pl.col("backend") == backend)).select("user_id", metric)


def gain_rows(averaged: pl.DataFrame, protocol: str, catalogue: Catalogue, settings: GainSettings) -> list[dict]:
    """The gains of one protocol's test split (seed-averaged per-user metrics)."""
    test = averaged.filter(pl.col("split") == "test")
    runs = set(test.select("model", "backend").unique().iter_rows())
    rows = []
    for pair in plan_pairs(runs, catalogue):
        for metric in METRICS:
            joined = _users(test, pair.model, pair.backend, metric).join(
                _users(test, pair.base_model, pair.base_backend, metric), on="user_id", suffix="_base"
            ).sort("user_id")
            if joined.is_empty():
                log.warning("%s: %s/%s and %s/%s share no test users; no gain", protocol, pair.model, pair.backend,
                            pair.base_model, pair.base_backend)  # fmt: skip
                continue
            a, b = joined[metric].to_numpy(), joined[f"{metric}_base"].to_numpy()
            key = "\0".join((protocol, pair.model, pair.backend, pair.base_model, pair.base_backend, metric))
            rng = np.random.default_rng([settings.seed, zlib.crc32(key.encode())])
            ci = paired_bootstrap_ci(a, b, settings.resamples, settings.confidence, rng)
            base_mean = float(b.mean())
            rows.append({
                "protocol": protocol, "model": pair.model, "way": pair.way, "backend": pair.backend,
                "base_model": pair.base_model, "base_backend": pair.base_backend, "metric": metric, "k": settings.k,
                "mean": float(a.mean()), "base_mean": base_mean, "gain": ci.mean_diff, "ci_low": ci.ci_low,
                "ci_high": ci.ci_high, "relative": ci.mean_diff / base_mean if base_mean > 0 else None, "n_users": ci.n,
            })  # fmt: skip
    return rows


def gains_table(warm: pl.DataFrame, cold: pl.DataFrame, catalogue: Catalogue, settings: GainSettings) -> pl.DataFrame:
    """gains.csv: warm rows, then cold rows, each in config order of model and backend."""
    rows = gain_rows(warm, "warm", catalogue, settings) + gain_rows(cold, "cold", catalogue, settings)
    frame = pl.DataFrame(rows, schema=COLUMNS)
    if frame.is_empty():
        return frame
    ordered = catalogue.sort(frame, pl.col("metric").replace_strict(list(METRICS), list(range(len(METRICS)))))
    return ordered.sort(pl.col("protocol").replace_strict(list(PROTOCOLS), [0, 1]), maintain_order=True)


def gains_figure(frame: pl.DataFrame, catalogue: Catalogue, settings: GainSettings, path: str | os.PathLike[str]) -> None:
    """A panel per backend: a row per way of using content (model instance), its gain over the
    collaborative-only version warm and cold side by side, with the bootstrap interval."""
    part = frame.filter(pl.col("metric") == settings.metric)
    backends = sorted(part["backend"].unique().to_list(), key=catalogue.backend_key) or ["–"]
    models = sorted(part["model"].unique().to_list(), key=catalogue.model_key)
    fig, axes = plt.subplots(1, len(backends), figsize=(1.5 + 3.2 * len(backends), 1.2 + 0.45 * max(len(models), 1)),
                             squeeze=False, sharey=True)  # fmt: skip
    colours = {"warm": "tab:orange", "cold": "tab:blue"}
    y = np.arange(len(models))
    for col, backend in enumerate(backends):
        ax = axes[0, col]
        for j, protocol in enumerate(PROTOCOLS):
            cells = {r["model"]: r for r in part.filter((pl.col("backend") == backend) & (pl.col("protocol") == protocol))
                     .iter_rows(named=True)}  # fmt: skip
            shown = [i for i, m in enumerate(models) if m in cells]
            if not shown:
                continue
            gain = np.array([cells[models[i]]["gain"] for i in shown])
            low = np.array([cells[models[i]]["ci_low"] if cells[models[i]]["ci_low"] is not None else g
                            for i, g in zip(shown, gain, strict=True)])  # fmt: skip
            high = np.array([cells[models[i]]["ci_high"] if cells[models[i]]["ci_high"] is not None else g
                             for i, g in zip(shown, gain, strict=True)])  # fmt: skip
            pos = y[shown] + (j - 0.5) * 0.38
            ax.barh(pos, gain, height=0.36, color=colours[protocol], label=protocol)
            ax.errorbar(gain, pos, xerr=[gain - low, high - gain], fmt="none", ecolor="black", capsize=2, lw=0.8)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_title(backend_label(backend, catalogue))
        ax.set_xlabel(f"Δ NDCG@{settings.k}" if settings.metric == "ndcg" else f"Δ {settings.metric}@{settings.k}")
        if col == 0:
            ways = {m: part.filter(pl.col("model") == m)["way"][0] for m in models}
            labels = [model_label(m, catalogue) + ("" if ways[m] in CF_TYPES else f" · {ways[m]}") for m in models]
            ax.set_yticks(y, labels, fontsize=8)
            ax.invert_yaxis()
        if part.is_empty():
            ax.text(0.5, 0.5, "no run with content and a collaborative-only version\n(items: id, or ials) in this config",
                    ha="center", va="center", transform=ax.transAxes, fontsize=8)  # fmt: skip
        elif col == len(backends) - 1:
            ax.legend(fontsize=8, loc="best")
    fig.suptitle(
        f"Gain over the collaborative-only version (items: id; ials for content2cf/contrastive/cmf), test split\n"
        f"{settings.confidence * 100:g}% paired bootstrap interval over users ({settings.resamples} resamples)",
        fontsize=9,
        y=1.04,
    )
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def build_gains(
    warm_files: list[str | os.PathLike[str]],
    cold_files: list[str | os.PathLike[str]],
    catalogue: Catalogue,
    settings: GainSettings,
    table: str | os.PathLike[str],
    figure: str | os.PathLike[str],
) -> pl.DataFrame:
    """Read both datasets' per-user run metrics, write gains.csv and the figure."""
    warm = seed_average(load_per_user(warm_files))
    cold = seed_average(load_per_user(cold_files))
    frame = gains_table(warm, cold, catalogue, settings)
    log.info("%d gain rows (%d pairs)", len(frame), frame.select("protocol", "model", "backend").n_unique())
    write_csv(frame, table)
    gains_figure(frame, catalogue, settings, figure)
    return frame

"""metrics.csv and significance.csv from seed-averaged per-user metrics.

Which comparisons, and which Holm families (documented in docs/report.md):
- `baseline`: within a model, every backend against the model's baseline: `random`
  for shallow/bert4rec (item vectors learned from interactions alone), for knn (which
  has no `random`) the backend with the best *validation* mean of the same metric, or
  `report.baselines.<model>` where set.
- `floor`: every backend of every model against each popularity model (`type: pop`),
  the floor any recommender should clear; in a cold-item report also against every model
  that cannot score an unseen track (`Catalogue.floors`: declaration
  `scores_unseen_tracks: false`, e.g. ials, or `items: id`).
- `pairs`: within a model, all unordered pairs of backends (exploratory).
Holm's correction runs over each model × split × metric × test × family, so adding a
backend to one model never changes another model's adjusted p-values, and the planned
baseline comparisons that Table 3 marks are not diluted by the exploratory pairs.
"""

from __future__ import annotations

import itertools
import logging
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from audiorec.evaluation.metric_names import METRICS
from audiorec.evaluation.stats import holm, mean_ci, paired_t_test, sign_flip_pvalues

log = logging.getLogger(__name__)

TESTS = ("sign_flip", "paired_t")
FAMILIES = ("baseline", "floor", "pairs")
LEARNED_BASELINE = "random"
# Model types whose `random` backend is fixed seeded vectors (content from noise), not a
# learned per-track table: the tables' Items column says `random` for them, `id` for the rest.
FIXED_RANDOM_TYPES = ("knn", "content2cf", "contrastive", "cmf")


@dataclass(frozen=True)
class ReportSettings:
    """The `report:` config section plus evaluation.k (defaults as in the schema)."""

    k: int = 50
    alpha: float = 0.05
    confidence: float = 0.95
    n_permutations: int = 10000
    seed: int = 0
    test: str = "sign_flip"
    baselines: dict[str, str] = field(default_factory=dict)
    mir_scores: str | None = None
    bootstrap_resamples: int = 2000  # rule gains only (report/gains.py)

    @classmethod
    def from_config(cls, report: dict[str, Any], k: int) -> ReportSettings:
        known = {f for f in cls.__dataclass_fields__ if f != "k"}
        unknown = set(report) - known
        if unknown:
            raise ValueError(f"report: unknown setting(s) {sorted(unknown)}; known: {sorted(known)}")
        settings = cls(k=int(k), **report)
        if settings.test not in TESTS:
            raise ValueError(f"report.test must be one of {TESTS}, got {settings.test!r}")
        return settings


@dataclass(frozen=True)
class Catalogue:
    """Model and backend types in config order: they order every table and figure."""

    model_types: dict[str, str]
    backend_types: dict[str, str]
    # model -> how it uses content (its `items` mode, normalisation): the tables' "Items" column
    model_ways: dict[str, str] = field(default_factory=dict)
    # model instances shown as the floor besides the pop types (a cold-item report: those that
    # cannot score an unseen track; docs/report.md)
    floors: tuple[str, ...] = ()

    def is_floor(self, model: str) -> bool:
        return self.model_types.get(model) == "pop" or model in self.floors

    def way(self, model: str, backend: str) -> str:
        """How a run used its items: on the `random` backend `id` (a learned model's table)
        or `random` (KNN's fixed vectors), else the model's way ("" without item vectors)."""
        way = self.model_ways.get(model, "")
        if backend == LEARNED_BASELINE and way:
            return "random" if self.model_types.get(model) in FIXED_RANDOM_TYPES else "id"
        return way

    def backend_type(self, backend: str) -> str:
        return self.backend_types.get(backend, backend)

    def backend_key(self, backend: str) -> tuple[int, str]:
        order = list(self.backend_types)
        return (order.index(backend) if backend in order else len(order) + (backend == "random"), backend)

    def model_key(self, model: str) -> tuple[int, str]:
        order = list(self.model_types)
        return (order.index(model) if model in order else len(order), model)

    def sort(self, frame: pl.DataFrame, *extra: str) -> pl.DataFrame:
        """Sort by model, backend (config order), then the extra columns."""
        models = sorted(frame["model"].unique().to_list(), key=self.model_key)
        backends = sorted(frame["backend"].unique().to_list(), key=self.backend_key)
        return frame.sort(
            pl.col("model").replace_strict(models, list(range(len(models)))),
            pl.col("backend").replace_strict(backends, list(range(len(backends)))),
            *extra,
        )


def summarise(
    averaged: pl.DataFrame, settings: ReportSettings, catalogue: Catalogue, metrics: tuple[str, ...] = METRICS
) -> pl.DataFrame:
    """metrics.csv: mean and t interval over users of the seed-averaged per-user metrics."""
    rows = []
    for (model, backend, split), group in averaged.group_by("model", "backend", "split"):
        for metric in metrics:
            ci = mean_ci(group[metric].to_numpy(), settings.confidence)
            rows.append(
                {
                    "model": model,
                    "backend": backend,
                    "split": split,
                    "metric": metric,
                    "k": settings.k,
                    "mean": ci.mean,
                    "ci_low": ci.ci_low,
                    "ci_high": ci.ci_high,
                    "n_users": ci.n,
                    "n_seeds": int(group["n_seeds"].max()),
                }
            )
    schema = {
        "model": pl.String,
        "backend": pl.String,
        "split": pl.String,
        "metric": pl.String,
        "k": pl.Int64,
        "mean": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "n_users": pl.Int64,
        "n_seeds": pl.Int64,
    }
    frame = pl.DataFrame(rows, schema=schema)
    if frame["ci_low"].null_count():
        log.warning("%d metric(s) from a single user have no confidence interval", frame["ci_low"].null_count())
    metric_order = pl.col("metric").replace_strict(list(metrics), list(range(len(metrics))))
    return catalogue.sort(frame, pl.col("split").replace_strict(["test", "val"], [0, 1], default=2), metric_order)


def baselines(
    summary: pl.DataFrame, settings: ReportSettings, catalogue: Catalogue, metrics: tuple[str, ...] = METRICS
) -> dict[tuple[str, str], str]:
    """(model, metric) -> the backend every other backend of the model is tested against.

    A beyond-accuracy metric (novelty, ...) has no "best": a model picked by its best
    validation mean (knn) is tested against its best backend by validation NDCG."""
    out: dict[tuple[str, str], str] = {}
    for model in summary["model"].unique().to_list():
        mtype = catalogue.model_types.get(model, model)
        if mtype == "pop":
            continue
        rows = summary.filter(pl.col("model") == model)
        backends = sorted(rows["backend"].unique().to_list(), key=catalogue.backend_key)
        configured = settings.baselines.get(model)
        if configured is not None and configured not in backends:
            raise ValueError(
                f"report.baselines.{model} = {configured!r} is not a backend with results for model {model} "
                f"(it has {backends})"
            )
        selection = "val" if "val" in rows["split"].to_list() else rows["split"][0]
        for metric in metrics:
            chooser = metric if metric in METRICS else "ndcg"
            if configured is not None:
                out[model, metric] = configured
            elif LEARNED_BASELINE in backends and mtype != "knn":  # learned models: items: id
                out[model, metric] = LEARNED_BASELINE
            else:
                ranked = rows.filter((pl.col("split") == selection) & (pl.col("metric") == chooser))
                # Highest mean; ties go to the backend listed first in the config.
                ordered = sorted(ranked.rows(named=True), key=lambda r: (-r["mean"], catalogue.backend_key(r["backend"])))
                out[model, metric] = ordered[0]["backend"]
    return out


@dataclass
class _Comparison:
    model: str
    split: str
    metric: str
    a: str
    b: str
    family: str
    diff: np.ndarray


def _vectors(averaged: pl.DataFrame, model: str, split: str) -> dict[str, pl.DataFrame]:
    """backend -> that backend's seed-averaged metrics, rows in user_id order."""
    part = averaged.filter((pl.col("model") == model) & (pl.col("split") == split))
    return {b[0]: g.sort("user_id") for b, g in part.group_by("backend")}


def _plan(
    averaged: pl.DataFrame,
    base: dict[tuple[str, str], str],
    catalogue: Catalogue,
    metrics: tuple[str, ...] = METRICS,
    families: tuple[str, ...] = FAMILIES,
) -> list[list[_Comparison]]:
    """The comparisons of each model × split (one sign-flip batch each)."""
    pop_models = sorted(
        (m for m in averaged["model"].unique().to_list() if catalogue.is_floor(m)),
        key=catalogue.model_key,
    )
    batches = []
    models = sorted(averaged["model"].unique().to_list(), key=catalogue.model_key)
    splits = sorted(averaged["split"].unique().to_list(), key=lambda s: (s != "test", s))
    for model in models:
        if catalogue.model_types.get(model) == "pop":
            continue
        for split in splits:
            own = _vectors(averaged, model, split)
            if not own:
                continue
            floors = {}
            for pop in pop_models:
                vecs = _vectors(averaged, pop, split)
                if len(vecs) != 1:
                    raise ValueError(f"floor model {pop} has {len(vecs)} backends on {split}; expected one (`none` or `random`)")
                floors[pop] = next(iter(vecs.values()))
            backends = sorted(own, key=catalogue.backend_key)
            batch = []
            for metric in metrics:
                vec = {b: own[b][metric].to_numpy() for b in backends}
                baseline = base[model, metric]
                if "baseline" in families:
                    batch += [
                        _Comparison(model, split, metric, b, baseline, "baseline", vec[b] - vec[baseline])
                        for b in backends
                        if b != baseline
                    ]
                if "floor" in families and model not in pop_models:
                    batch += [
                        _Comparison(model, split, metric, b, pop, "floor", vec[b] - floors[pop][metric].to_numpy())
                        for pop in floors
                        for b in backends
                    ]
                if "pairs" in families:
                    batch += [
                        _Comparison(model, split, metric, a, b, "pairs", vec[a] - vec[b])
                        for a, b in itertools.combinations(backends, 2)
                    ]
            if batch:
                batches.append(batch)
    return batches


def compare(
    averaged: pl.DataFrame,
    summary: pl.DataFrame,
    settings: ReportSettings,
    catalogue: Catalogue,
    metrics: tuple[str, ...] = METRICS,
    families: tuple[str, ...] = FAMILIES,
) -> pl.DataFrame:
    """significance.csv: paired t and sign-flip tests of every planned comparison, Holm-adjusted.

    `metrics`, `families`: which to test (the user-group tables test the accuracy metrics'
    baseline and floor comparisons only)."""
    base = baselines(summary, settings, catalogue, metrics)
    rows: list[dict[str, Any]] = []
    for batch in _plan(averaged, base, catalogue, metrics, families):
        model, split = batch[0].model, batch[0].split
        # Seeded per model × split, so adding another model leaves these p-values alone.
        rng = np.random.default_rng([settings.seed, zlib.crc32(f"{model}\0{split}".encode())])
        diffs = np.stack([c.diff for c in batch], axis=1)
        p_flip = sign_flip_pvalues(diffs, settings.n_permutations, rng)
        for c, p_sf in zip(batch, p_flip, strict=True):
            t = paired_t_test(c.diff, np.zeros_like(c.diff), settings.confidence)
            common = {
                "model": c.model,
                "split": c.split,
                "metric": c.metric,
                "backend_a": c.a,
                "backend_b": c.b,
                "mean_diff": t.mean_diff,
                "ci_low": t.ci_low,
                "ci_high": t.ci_high,
                "effect_size": t.effect_size,
            }
            rows.append({**common, "test": "sign_flip", "p_value": float(p_sf), "family": c.family, "n_users": t.n})
            rows.append({**common, "test": "paired_t", "p_value": t.p_value, "family": c.family, "n_users": t.n})
    schema = {
        "model": pl.String,
        "split": pl.String,
        "metric": pl.String,
        "backend_a": pl.String,
        "backend_b": pl.String,
        "mean_diff": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "effect_size": pl.Float64,
        "test": pl.String,
        "p_value": pl.Float64,
        "family": pl.String,
        "n_users": pl.Int64,
    }
    frame = pl.DataFrame(rows, schema=schema).with_row_index("_i")
    adjusted = []
    for _, group in frame.filter(pl.col("p_value").is_not_null()).group_by("model", "split", "metric", "test", "family"):
        adjusted.append(group.select("_i", pl.Series("p_adjusted", holm(group["p_value"].to_numpy()))))
    untestable = frame["p_value"].null_count()
    if untestable:
        log.warning("%d comparison(s) had fewer than 2 users and were not tested", untestable)
    if adjusted:
        frame = frame.join(pl.concat(adjusted), on="_i", how="left")
    else:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("p_adjusted"))
    columns = [
        "model",
        "split",
        "metric",
        "backend_a",
        "backend_b",
        "mean_diff",
        "ci_low",
        "ci_high",
        "effect_size",
        "test",
        "p_value",
        "p_adjusted",
        "family",
        "n_users",
    ]
    return frame.sort("_i").select(columns)

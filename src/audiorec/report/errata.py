"""The report's Errata section: what each erratum of the published code changes.

Each configured pair (`errata:` in the config) names a *fixed* and an *erratum* run that differ
only by settings restoring the published code's behaviour (the workflow checks that). Per pair,
split and metric: the mean change fixed - erratum over users, its t interval, Cohen's d_z and
both paired tests of the main report (`audiorec.evaluation.stats`), with Holm's correction over
the pairs of one split x metric x test (the family: "which errata matter for this metric?").

Users are the pairing unit, as everywhere in the report: each user's metric is averaged over
seeds first. Two runs on one split evaluate the same users (anything else is stale results, an
error). A pair across two splits of the same data (`split.history`) has different val/test users
on each side; it is compared over the users both evaluate, and the table says how many that is.
"""

from __future__ import annotations

import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from audiorec.evaluation.metric_names import METRICS
from audiorec.evaluation.stats import holm, paired_t_test, sign_flip_pvalues
from audiorec.io import write_csv, write_text
from audiorec.report.aggregate import ReportSettings
from audiorec.report.collect import load_per_user, parse_run_file, seed_average

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
SPLITS = ("test", "val")
LABELS = {"hitrate": "HR", "recall": "Recall", "ndcg": "NDCG", "mrr": "MRR", "precision": "P"}


@dataclass(frozen=True)
class RunRef:
    dataset: str
    model: str
    backend: str

    def __str__(self) -> str:
        return f"{self.dataset}/{self.model}/{self.backend}"


@dataclass(frozen=True)
class ErratumPair:
    name: str
    fixed: RunRef
    erratum: RunRef
    settings: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, pair: dict[str, Any]) -> ErratumPair:
        return cls(
            name=str(pair["name"]),
            fixed=RunRef(**pair["fixed"]),
            erratum=RunRef(**pair["erratum"]),
            settings=tuple(pair.get("settings") or ()),
        )


def run_of(path: PathLike) -> RunRef:
    """The run a `results/{dataset}/runs/{model}/{backend}/seed{n}/metrics_{split}.parquet` belongs to."""
    run = parse_run_file(path)
    runs_dir = Path(path).parents[3]
    if runs_dir.name != "runs":
        raise ValueError(f"{path}: not under results/{{dataset}}/runs/")
    return RunRef(runs_dir.parent.name, run.model, run.backend)


def load_runs(files: list[PathLike]) -> dict[RunRef, pl.DataFrame]:
    """Run -> its seed-averaged per-user metrics (columns split, user_id, the metrics, n_seeds)."""
    grouped: dict[RunRef, list[PathLike]] = {}
    for path in files:
        grouped.setdefault(run_of(path), []).append(path)
    return {ref: seed_average(load_per_user(paths)).drop("model", "backend") for ref, paths in grouped.items()}


def _paired(pair: ErratumPair, runs: dict[RunRef, pl.DataFrame], split: str) -> pl.DataFrame | None:
    """One row per user both runs evaluated on `split`: `{metric}_fixed`, `{metric}_erratum`."""
    for ref in (pair.fixed, pair.erratum):
        if ref not in runs:
            raise ValueError(f"errata '{pair.name}': no metrics of run {ref} were given")
    sides = [runs[ref].filter(pl.col("split") == split).drop("split", "n_seeds") for ref in (pair.fixed, pair.erratum)]
    if sides[0].is_empty() or sides[1].is_empty():
        return None
    same_split = pair.fixed.dataset == pair.erratum.dataset
    if same_split and set(sides[0]["user_id"]) != set(sides[1]["user_id"]):
        raise ValueError(
            f"errata '{pair.name}': runs {pair.fixed} and {pair.erratum} evaluated different users on {split}; "
            "both rank the users of the same split part — re-run the stale run"
        )
    joined = sides[0].join(sides[1], on="user_id", how="inner", suffix="_erratum")
    return joined.rename({m: f"{m}_fixed" for m in METRICS}).sort("user_id")


def compare_errata(pairs: list[ErratumPair], runs: dict[RunRef, pl.DataFrame], settings: ReportSettings) -> pl.DataFrame:
    """errata.csv: per pair x split x metric x test, fixed - erratum over the users both runs evaluate."""
    rows: list[dict[str, Any]] = []
    for pair in pairs:
        for split in SPLITS:
            joined = _paired(pair, runs, split)
            if joined is None:
                continue
            n_fixed = runs[pair.fixed].filter(pl.col("split") == split).height
            n_erratum = runs[pair.erratum].filter(pl.col("split") == split).height
            if len(joined) == 0:
                raise ValueError(f"errata '{pair.name}': runs {pair.fixed} and {pair.erratum} share no {split} user")
            diffs = np.stack([(joined[f"{m}_fixed"] - joined[f"{m}_erratum"]).to_numpy() for m in METRICS], axis=1)
            # seeded per pair x split, so adding a pair leaves the others' p-values alone
            rng = np.random.default_rng([settings.seed, zlib.crc32(f"{pair.name}\0{split}".encode())])
            p_flip = sign_flip_pvalues(diffs, settings.n_permutations, rng)
            for j, metric in enumerate(METRICS):
                t = paired_t_test(diffs[:, j], np.zeros(len(joined)), settings.confidence)
                common = {
                    "erratum": pair.name,
                    "settings": "; ".join(pair.settings),
                    "fixed_run": str(pair.fixed),
                    "erratum_run": str(pair.erratum),
                    "split": split,
                    "metric": metric,
                    "k": settings.k,
                    "n_users": len(joined),
                    "n_users_fixed": n_fixed,
                    "n_users_erratum": n_erratum,
                    "mean_fixed": float(joined[f"{metric}_fixed"].mean()),
                    "mean_erratum": float(joined[f"{metric}_erratum"].mean()),
                    "mean_diff": t.mean_diff,
                    "ci_low": t.ci_low,
                    "ci_high": t.ci_high,
                    "effect_size": t.effect_size,
                }
                rows.append({**common, "test": "sign_flip", "p_value": float(p_flip[j])})
                rows.append({**common, "test": "paired_t", "p_value": t.p_value})
    frame = pl.DataFrame(rows, schema=_SCHEMA).with_row_index("_i")
    adjusted = [
        group.select("_i", pl.Series("p_adjusted", holm(group["p_value"].to_numpy())))
        for _, group in frame.filter(pl.col("p_value").is_not_null()).group_by("split", "metric", "test")
    ]
    if adjusted:
        frame = frame.join(pl.concat(adjusted), on="_i", how="left")
    else:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("p_adjusted"))
    return frame.sort("_i").drop("_i")


_SCHEMA = {
    "erratum": pl.String,
    "settings": pl.String,
    "fixed_run": pl.String,
    "erratum_run": pl.String,
    "split": pl.String,
    "metric": pl.String,
    "k": pl.Int64,
    "n_users": pl.Int64,
    "n_users_fixed": pl.Int64,
    "n_users_erratum": pl.Int64,
    "mean_fixed": pl.Float64,
    "mean_erratum": pl.Float64,
    "mean_diff": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "effect_size": pl.Float64,
    "test": pl.String,
    "p_value": pl.Float64,
}


def _cell(row: dict[str, Any], alpha: float) -> str:
    mark = ""
    p = row["p_adjusted"]
    if p is not None and p < alpha:
        mark = " ▲" if row["mean_diff"] > 0 else " ▼"
    p_text = "–" if p is None else (f"{p:.3f}" if p >= 0.001 else "<0.001")
    return f"{row['mean_diff']:+.4f}{mark} (p {p_text})"


def errata_markdown(table: pl.DataFrame, pairs: list[ErratumPair], settings: ReportSettings, dataset: str) -> str:
    """errata.md: a table per split, a row per pair, the change of every metric with its test."""
    level = round(100 * settings.confidence)
    lines = [
        f"# Errata of the published code ({dataset})",
        "",
        "Each row compares two runs that differ only by the settings that restore one erratum of the "
        "published code (README, \"Deviations from the published reference code\"). Cells: the mean "
        f"change fixed − erratum over users at K={settings.k} (positive: the fix scores higher), "
        f"▲/▼ where the `{settings.test}` test, Holm-adjusted over the pairs of the table's metric, "
        f"is below α = {settings.alpha}, and that adjusted p-value. Paired by user (each user's metric "
        "averaged over seeds). A pair across two splits (`split.history`) is compared over the users "
        "both splits evaluate: `users` says how many, of how many on each side. "
        f"{level}% intervals, effect sizes and both tests: errata.csv.",
    ]
    chosen = table.filter(pl.col("test") == settings.test) if not table.is_empty() else table
    for split in SPLITS:
        part = chosen.filter(pl.col("split") == split) if not chosen.is_empty() else chosen
        if part.is_empty():
            continue
        header = ["Erratum", "restored by", "fixed run", "erratum run", "users"]
        header += [f"Δ {LABELS.get(m, m)}@{settings.k}" for m in METRICS]
        body = []
        for pair in pairs:
            rows = {r["metric"]: r for r in part.filter(pl.col("erratum") == pair.name).iter_rows(named=True)}
            if not rows:
                continue
            first = next(iter(rows.values()))
            users = str(first["n_users"])
            if first["n_users"] != first["n_users_fixed"] or first["n_users"] != first["n_users_erratum"]:
                users += f" (of {first['n_users_fixed']} / {first['n_users_erratum']})"
            body.append(
                [f"**{pair.name}**", "<br>".join(f"`{s}`" for s in pair.settings) or "–",
                 str(pair.fixed), str(pair.erratum), users]
                + [_cell(rows[m], settings.alpha) if m in rows else "–" for m in METRICS]
            )
        lines += ["", f"## {'Test' if split == 'test' else 'Validation'} split", ""]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in body]
    if len(lines) == 1 + 2:  # nothing but the introduction
        lines += ["", "_No errata pair has results._"]
    return "\n".join(lines) + "\n"


def build_errata(
    metric_files: list[PathLike],
    pairs: list[dict[str, Any]],
    settings: ReportSettings,
    dataset: str,
    csv_path: PathLike,
    md_path: PathLike,
) -> pl.DataFrame:
    """Read both runs of every pair, compare them and write errata.csv and errata.md."""
    parsed = [ErratumPair.from_config(p) for p in pairs]
    runs = load_runs(metric_files)
    log.info("%d errata pairs over %d runs", len(parsed), len(runs))
    table = compare_errata(parsed, runs, settings)
    write_csv(table, csv_path)
    write_text(errata_markdown(table, parsed, settings, dataset), md_path)
    return table

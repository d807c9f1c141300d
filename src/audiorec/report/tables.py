"""table3.md: the paper's Tables 2, 3 and 4 laid out with our numbers (and the paper's beside them).

Markdown, because it reads well both on GitHub and inside the Snakemake HTML report,
and diffs well between runs.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import polars as pl

from audiorec.report.aggregate import Catalogue, ReportSettings
from audiorec.report.reference import (
    BACKEND_NAMES,
    MODEL_NAMES,
    PAPER_K,
    paper_table2,
    paper_table3,
)

log = logging.getLogger(__name__)

TABLE3_METRICS = {"hitrate": "HR", "recall": "Recall", "ndcg": "NDCG"}
PART_ALIASES = {"validation": "val", "valid": "val", "training": "train", "testing": "test"}
HIGHER, LOWER, BASELINE = "▲", "▼", "°"


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def model_label(model: str, catalogue: Catalogue) -> str:
    mtype = catalogue.model_types.get(model, model)
    name = MODEL_NAMES.get(mtype, mtype)
    return name if model == mtype else f"{model} ({name})"


def backend_label(backend: str, catalogue: Catalogue) -> str:
    btype = catalogue.backend_type(backend)
    name = BACKEND_NAMES.get(btype, btype)
    return name if backend == btype else f"{backend} ({name})"


def table3(
    summary: pl.DataFrame,
    significance: pl.DataFrame,
    settings: ReportSettings,
    catalogue: Catalogue,
    split: str,
    with_reference: bool,
) -> str:
    """One split's Table 3: a block per model, a row per backend, HR/Recall/NDCG at K."""
    k = settings.k
    part = summary.filter(pl.col("split") == split)
    if part.is_empty():
        return f"_No results for split `{split}`._"
    marks = significance.filter(
        (pl.col("split") == split) & (pl.col("family") == "baseline") & (pl.col("test") == settings.test)
    )
    reference = paper_table3() if with_reference else None
    ways = bool(catalogue.model_ways)  # an "Items" column: how each run used content
    header = ["Model", "Backend", *(["Items"] if ways else [])]
    for label in TABLE3_METRICS.values():
        header.append(f"{label}@{k}")
        if reference is not None:
            header.append(f"{label}@{PAPER_K} (paper)")
    rows = []
    models = sorted(part["model"].unique().to_list(), key=catalogue.model_key)
    for model in models:
        backends = sorted(part.filter(pl.col("model") == model)["backend"].unique().to_list(), key=catalogue.backend_key)
        for i, backend in enumerate(backends):
            row = [f"**{model_label(model, catalogue)}**" if i == 0 else "", backend_label(backend, catalogue)]
            if ways:
                row.append(catalogue.way(model, backend) or "–")
            for metric in TABLE3_METRICS:
                cell = part.filter(
                    (pl.col("model") == model) & (pl.col("backend") == backend) & (pl.col("metric") == metric)
                )
                text = _fmt(cell["mean"].item())
                tested = marks.filter(
                    (pl.col("model") == model) & (pl.col("backend_a") == backend) & (pl.col("metric") == metric)
                )
                is_baseline = marks.filter(
                    (pl.col("model") == model) & (pl.col("backend_b") == backend) & (pl.col("metric") == metric)
                )
                if len(tested) == 1:
                    r = tested.row(0, named=True)
                    if r["p_adjusted"] is not None and r["p_adjusted"] < settings.alpha:
                        text += " " + (HIGHER if r["mean_diff"] > 0 else LOWER)
                elif len(is_baseline):
                    text += " " + BASELINE
                row.append(text)
                if reference is not None:
                    ref = reference.filter(
                        (pl.col("model_type") == catalogue.model_types.get(model, model))
                        & (pl.col("backend_type") == catalogue.backend_type(backend))
                    )
                    row.append(_fmt(ref[metric].item()) if len(ref) == 1 else "")
            rows.append(row)
    counts = part.group_by("model", "backend").agg(pl.col("n_users").max(), pl.col("n_seeds").max())
    n_users = sorted(set(counts["n_users"].to_list()))
    n_seeds = sorted(set(counts["n_seeds"].to_list()))
    test_name = {"sign_flip": "sign-flip randomisation test", "paired_t": "paired t-test"}[settings.test]
    notes = [
        f"Means over {', '.join(map(str, n_users))} users, each user's metrics averaged over "
        f"{'/'.join(map(str, n_seeds))} seed(s); {settings.confidence * 100:g}% intervals and every test are in metrics.csv and "
        "significance.csv.",
        f"{HIGHER}/{LOWER}: significantly higher/lower than the model's baseline ({BASELINE}) by the "
        f"{test_name}, Holm-adjusted p < {settings.alpha} within model × split × metric.",
    ]
    if reference is not None:
        notes.append(
            "(paper): Tamm & Aljanaki (RecSys 2024), Table 3, test split of Music4All-Onion at K=50; "
            "matched by model type and backend type."
        )
    return _md_table(header, rows) + "\n\n" + "\n".join(f"- {n}" for n in notes)


STAT_ORDER = ("users", "items", "interactions")


def read_split_stats(path: str | os.PathLike[str]) -> tuple[pl.DataFrame | None, pl.DataFrame]:
    """(one row per part, raw file).

    The split stage owns stats.csv (docs/split.md): rows of `stage, name, listens,
    interactions, users, items`, the parts being the rows of stage `part`. The reading is
    tolerant of other layouts too: a part column (`part`, `split`, `set` or the first text
    column) with one row per part and numeric columns, or a tidy (part, statistic, value)
    file; `validation` is read as `val`. Anything else gives no per-part frame, and the raw
    file is shown as it is.
    """
    raw = pl.read_csv(path, infer_schema_length=None)
    frame = raw.rename({c: c.strip().lower() for c in raw.columns})
    if {"stage", "name"} <= set(frame.columns):
        frame = frame.filter(pl.col("stage").str.strip_chars().str.to_lowercase() == "part").drop("stage")
    text_cols = [c for c in frame.columns if frame.schema[c] == pl.String]
    numeric = [c for c in frame.columns if frame.schema[c].is_numeric()]
    part_col = next((c for c in ("part", "split", "set", "name") if c in text_cols), text_cols[0] if text_cols else None)
    if part_col is None or not numeric or frame.is_empty():
        return None, raw
    others = [c for c in text_cols if c != part_col]
    if len(others) == 1 and len(numeric) == 1:
        frame = frame.pivot(on=others[0], index=part_col, values=numeric[0], aggregate_function="first")
        numeric = [c for c in frame.columns if c != part_col]
    numeric = [c for c in STAT_ORDER if c in numeric] + [c for c in numeric if c not in STAT_ORDER]
    frame = frame.rename({part_col: "part"}).with_columns(
        pl.col("part").str.strip_chars().str.to_lowercase().replace(PART_ALIASES)
    )
    return frame.select("part", *numeric), raw


def table2(stats_path: str | os.PathLike[str], with_reference: bool) -> str:
    """Our split's Table 2 (users, items, interactions per part), the paper's beside it."""
    ours, raw = read_split_stats(stats_path)
    if ours is None:
        log.warning("%s: no part column with numeric statistics; shown as it is", stats_path)
        return _md_table(raw.columns, [[str(v) for v in r] for r in raw.rows()])
    reference = paper_table2() if with_reference else None
    stat_cols = [c for c in ours.columns if c != "part"]
    header = ["Part", *stat_cols]
    if reference is not None:
        header += [f"{c} (paper)" for c in reference.columns if c != "part"]
    order = {"train": 0, "val": 1, "test": 2}
    rows = []
    for r in sorted(ours.rows(named=True), key=lambda r: (order.get(r["part"], 3), str(r["part"]))):
        row = [str(r["part"]), *(_count(r[c]) for c in stat_cols)]
        if reference is not None:
            ref = reference.filter(pl.col("part") == r["part"])
            row += [_count(ref[c].item()) if len(ref) == 1 else "" for c in reference.columns if c != "part"]
        rows.append(row)
    note = f"From {Path(stats_path).name}"
    if reference is not None:
        note += "; (paper): Tamm & Aljanaki (RecSys 2024), Table 2, Music4All-Onion"
    text = _md_table(header, rows) + f"\n\n- {note}."
    if len(raw) > len(ours):
        text += "\n\nEvery row of stats.csv (the split's filters in order, docs/split.md):\n\n" + _md_table(
            raw.columns, [[_count(v) for v in r] for r in raw.rows()]
        )
    return text


def _count(value: object) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:.4g}"
    return f"{int(value):,}" if isinstance(value, int | float) else str(value)


def table4(
    summary: pl.DataFrame,
    mir: pl.DataFrame,
    settings: ReportSettings,
    catalogue: Catalogue,
    split: str = "test",
    with_reference: bool = False,
) -> str:
    """Published MIR scores beside our HR@K, one row per backend instance matched by type."""
    hr = summary.filter((pl.col("split") == split) & (pl.col("metric") == "hitrate"))
    models = [
        m for m in sorted(hr["model"].unique().to_list(), key=catalogue.model_key) if catalogue.model_types.get(m) != "pop"
    ]
    tasks = [c for c in mir.columns if c not in ("type", "name")]
    reference = paper_table3().filter(pl.col("model_type") == "bert4rec") if with_reference else None
    header = ["Backend", *tasks]
    if reference is not None:
        header.append(f"BERT4Rec HR@{PAPER_K} (paper)")
    header += [f"{model_label(m, catalogue)} HR@{settings.k}" for m in models]
    rows = []
    backends = sorted(hr["backend"].unique().to_list(), key=catalogue.backend_key)
    for backend in backends:
        btype = catalogue.backend_type(backend)
        ref_row = mir.filter(pl.col("type") == btype)
        if ref_row.is_empty():
            continue
        row = [backend_label(backend, catalogue), *(_fmt(ref_row[t][0]) for t in tasks)]
        if reference is not None:
            ref = reference.filter(pl.col("backend_type") == btype)
            row.append(_fmt(ref["hitrate"].item()) if len(ref) == 1 else "")
        for model in models:
            cell = hr.filter((pl.col("model") == model) & (pl.col("backend") == backend))
            row.append(_fmt(cell["mean"].item()) if len(cell) == 1 else "")
        rows.append(row)
    if not rows:
        return "_No configured backend has published MIR scores in the reference table._"
    return _md_table(header, rows) + (
        f"\n\n- MIR scores as published by each backend's authors (from the `report.mir_scores` table; "
        f"shipped default: the paper's Table 4 — tags: MagnaTagATune ROC-AUC, genres: GTZAN accuracy, "
        f"key: GiantSteps accuracy); HR@{settings.k} on the {split} split."
    )


def report_markdown(
    summary: pl.DataFrame,
    significance: pl.DataFrame,
    stats_path: str | os.PathLike[str],
    mir: pl.DataFrame,
    settings: ReportSettings,
    catalogue: Catalogue,
    dataset: str,
    with_reference: bool,
    protocol: dict | None = None,
) -> str:
    """The whole table3.md: Table 3 (test, then validation), Table 2, Table 4.

    For a cold-item split (`protocol`, docs/beyond.md) the same tables form a cold-start
    section: the question and the candidate pool are stated above them."""
    ref3 = with_reference and settings.k == PAPER_K
    cold = (protocol or {}).get("protocol") == "cold_items"
    if cold:
        from audiorec.report.cold_start import cold_start_intro

        sections = [f"# {dataset}: cold-start items\n", cold_start_intro(protocol or {}, settings.k) + "\n"]
    else:
        sections = [f"# {dataset}: results\n"]
    if with_reference and not ref3:
        sections.append(f"_The paper's numbers are at K={PAPER_K}; this run uses K={settings.k}, so they are not shown._\n")
    for split, title in (("test", "test split"), ("val", "validation split")):
        heading = "Cold-start items (Table 3 layout)" if cold else "Table 3"
        sections.append(f"## {heading} — {title}, K={settings.k}\n")
        sections.append(table3(summary, significance, settings, catalogue, split, ref3 and split == "test") + "\n")
    sections.append("## Table 2 — split\n")
    sections.append(table2(stats_path, with_reference) + "\n")
    sections.append(f"## Table 4 — MIR scores vs recommendation (HR@{settings.k}, test split)\n")
    sections.append(table4(summary, mir, settings, catalogue, "test", ref3) + "\n")
    return "\n".join(sections)

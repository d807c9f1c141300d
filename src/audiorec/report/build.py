"""The whole report of one dataset: metrics.csv, significance.csv, table3.md and the figures."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from audiorec.evaluation.metric_names import BEYOND_METRICS, METRICS
from audiorec.io import write_csv, write_text
from audiorec.report import figures
from audiorec.report.aggregate import Catalogue, ReportSettings, compare, summarise
from audiorec.report.beyond import (
    artist_results,
    concat_or_empty,
    group_results,
    run_level,
    user_profiles,
)
from audiorec.report.beyond_tables import beyond_markdown
from audiorec.report.collect import load_per_user, seed_average
from audiorec.report.reference import read_mir_scores
from audiorec.report.runs import dropped_note, read_runs
from audiorec.report.tables import report_markdown

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class ReportOutputs:
    metrics: PathLike
    significance: PathLike
    table3: PathLike
    metrics_test: PathLike
    metrics_val: PathLike
    per_user_test: PathLike
    per_user_val: PathLike
    mir_vs_recs: PathLike
    runs: PathLike
    # beyond accuracy (report/beyond.py); None: not written (the report without them)
    beyond: PathLike | None = None
    groups: PathLike | None = None
    groups_significance: PathLike | None = None
    accuracy_vs_novelty: PathLike | None = None


def build_report(
    run_metrics: list[PathLike],
    split_stats: PathLike,
    outputs: ReportOutputs,
    settings: ReportSettings,
    catalogue: Catalogue,
    dataset: str,
    dataset_format: str,
    protocol: dict | None = None,
    run_infos: list[PathLike] | None = None,
    beyond_files: list[PathLike] | None = None,
    beyond_run_files: list[PathLike] | None = None,
    artist_files: list[PathLike] | None = None,
    train: PathLike | None = None,
) -> None:
    """Aggregate every run's per-user metrics and write every report output.

    The paper's numbers are shown beside ours only for Music4All-Onion: elsewhere they
    measure a different dataset and would invite a meaningless comparison, and never for
    a cold-item split (`protocol`, docs/beyond.md), which asks a different question.

    With `beyond_files` (rule evaluate_beyond's per-user files), `beyond_run_files` and
    `train`, the beyond-accuracy metrics join metrics.csv and significance.csv, and
    beyond.csv, groups.csv, groups_significance.csv and the accuracy-vs-novelty figure are
    written (docs/report.md); `artist_files` add the artist groups of a cold-item split.
    """
    per_user = load_per_user(run_metrics)
    log.info("read %d per-user rows from %d run files", len(per_user), len(run_metrics))
    metrics = METRICS
    if beyond_files:
        per_user, metrics = _with_beyond(per_user, beyond_files)
    averaged = seed_average(per_user, metrics)
    summary = summarise(averaged, settings, catalogue, metrics)
    significance = compare(averaged, summary, settings, catalogue, metrics)
    log.info("%d metric rows, %d test rows", len(summary), len(significance))
    mir = read_mir_scores(settings.mir_scores)
    cold = (protocol or {}).get("protocol") == "cold_items"
    with_reference = dataset_format == "music4all-onion" and not cold

    runs = read_runs(run_infos or [])
    note = dropped_note(runs)

    write_csv(summary, outputs.metrics)
    write_csv(significance, outputs.significance)
    write_csv(runs, outputs.runs)
    markdown = report_markdown(
        summary, significance, split_stats, mir, settings, catalogue, dataset, with_reference, protocol=protocol
    )
    if note:
        markdown += f"\n_{note}_\n"
    if beyond_files and beyond_run_files and train is not None:
        markdown += "\n" + _beyond(
            averaged, summary, significance, metrics, beyond_run_files, artist_files or [], train, outputs,
            settings, catalogue, cold,
        )
    write_text(markdown, outputs.table3)
    for split in ("test", "val"):
        figures.metric_bars(summary, settings, catalogue, split, getattr(outputs, f"metrics_{split}"))
        figures.per_user_distributions(averaged, settings, catalogue, split, getattr(outputs, f"per_user_{split}"))
    figures.mir_vs_recs(summary, mir, settings, catalogue, outputs.mir_vs_recs)
    log.info("report written next to %s", Path(outputs.metrics).parent)


def _with_beyond(per_user: pl.DataFrame, paths: list[PathLike]) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """The accuracy frame joined with the beyond-accuracy per-user metrics (every file's)."""
    present = set(BEYOND_METRICS)
    for path in paths:
        present &= set(pl.read_parquet_schema(path))
    metrics = tuple(m for m in BEYOND_METRICS if m in present)
    beyond = load_per_user(paths, metrics, rule="evaluate_beyond")
    keys = ["model", "backend", "seed", "split", "user_id"]
    joined = per_user.join(beyond, on=keys, how="inner")
    if len(joined) != len(per_user) or len(beyond) != len(per_user):
        raise ValueError(
            f"beyond-accuracy files hold {len(beyond)} user rows, the accuracy files {len(per_user)} "
            f"({len(joined)} in both): re-run rule evaluate_beyond for the stale runs"
        )
    return joined, (*METRICS, *metrics)


def _beyond(
    averaged: pl.DataFrame,
    summary: pl.DataFrame,
    significance: pl.DataFrame,
    metrics: tuple[str, ...],
    run_files: list[PathLike],
    artist_files: list[PathLike],
    train: PathLike,
    outputs: ReportOutputs,
    settings: ReportSettings,
    catalogue: Catalogue,
    cold: bool,
) -> str:
    """Writes beyond.csv, groups*.csv and the figure; returns the table3.md sections."""
    runs = run_level(run_files, catalogue)
    group_s, group_t = group_results(averaged, summary, user_profiles(train), settings, catalogue)
    artist_s, artist_t = artist_results(artist_files, summary, settings, catalogue)
    groups = concat_or_empty(group_s + artist_s, summary)
    tests = concat_or_empty(group_t + artist_t, significance)
    log.info("beyond accuracy: %d run rows, %d group rows, %d group tests", len(runs), len(groups), len(tests))
    for frame, path in ((runs, outputs.beyond), (groups, outputs.groups), (tests, outputs.groups_significance)):
        if path is not None:
            write_csv(frame, path)
    if outputs.accuracy_vs_novelty is not None:
        figures.accuracy_vs_novelty(summary, settings, catalogue, outputs.accuracy_vs_novelty)
    note = None
    if cold and not artist_files:
        note = "_The dataset has no artist information (`id_information`): no artist groups._"
    beyond_only = tuple(m for m in metrics if m not in METRICS)
    return beyond_markdown(summary, significance, runs, beyond_only, groups, tests, settings, catalogue, note)

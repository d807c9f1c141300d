"""The whole report of one dataset: metrics.csv, significance.csv, table3.md and the figures."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from audiorec.io import write_csv, write_text
from audiorec.report import figures
from audiorec.report.aggregate import Catalogue, ReportSettings, compare, summarise
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
) -> None:
    """Aggregate every run's per-user metrics and write every report output.

    The paper's numbers are shown beside ours only for Music4All-Onion: elsewhere they
    measure a different dataset and would invite a meaningless comparison, and never for
    a cold-item split (`protocol`, docs/beyond.md), which asks a different question.
    """
    per_user = load_per_user(run_metrics)
    log.info("read %d per-user rows from %d run files", len(per_user), len(run_metrics))
    averaged = seed_average(per_user)
    summary = summarise(averaged, settings, catalogue)
    significance = compare(averaged, summary, settings, catalogue)
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
    write_text(markdown + (f"\n_{note}_\n" if note else ""), outputs.table3)
    for split in ("test", "val"):
        figures.metric_bars(summary, settings, catalogue, split, getattr(outputs, f"metrics_{split}"))
        figures.per_user_distributions(averaged, settings, catalogue, split, getattr(outputs, f"per_user_{split}"))
    figures.mir_vs_recs(summary, mir, settings, catalogue, outputs.mir_vs_recs)
    log.info("report written next to %s", Path(outputs.metrics).parent)

"""Snakemake script for rule layer_sweep_report: layer_sweep.csv, layer_sweep.md and the figure."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from audiorec.analysis.layer_sweep_report import SweepReportSettings, build_sweep_report  # noqa: E402
from audiorec.report.aggregate import Catalogue  # noqa: E402
from audiorec.runtime import setup_logging  # noqa: E402

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
build_sweep_report(
    sweep_files=list(sm.input),
    csv_path=sm.output.csv,
    md_path=sm.output.md,
    figure_path=sm.output.figure,
    settings=SweepReportSettings(k=int(sm.params.k), metric=sm.params.metric, confidence=float(sm.params.confidence)),
    catalogue=Catalogue(model_types=dict(sm.params.model_types), backend_types=dict(sm.params.backend_types)),
    dataset=sm.wildcards.dataset,
)

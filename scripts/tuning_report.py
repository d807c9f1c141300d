"""Snakemake script for rule tuning_report: tuning.csv, tuning.md and the best-so-far figure."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from audiorec.report.aggregate import ReportSettings  # noqa: E402
from audiorec.report.tuning import build_tuning_report  # noqa: E402
from audiorec.runtime import setup_logging  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
build_tuning_report(
    best_files=list(smk.input.best),
    trial_files=list(smk.input.trials),
    metric_files=list(smk.input.metrics),
    pairs=dict(smk.params.pairs),
    settings=ReportSettings.from_config(dict(smk.params.report), k=smk.params.k),
    dataset=smk.wildcards.dataset,
    csv_path=smk.output.table,
    md_path=smk.output.markdown,
    figure_path=smk.output.figure,
)

"""Snakemake script for rule errata_report: errata.csv and errata.md (the report's Errata section)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from audiorec.report.aggregate import ReportSettings  # noqa: E402
from audiorec.report.errata import build_errata  # noqa: E402
from audiorec.runtime import setup_logging  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
build_errata(
    metric_files=list(smk.input.metrics),
    pairs=[dict(pair) for pair in smk.params.pairs],
    settings=ReportSettings.from_config(dict(smk.params.report), k=smk.params.k),
    dataset=smk.wildcards.dataset,
    csv_path=smk.output.table,
    md_path=smk.output.markdown,
)

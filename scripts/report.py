"""Snakemake script for rule report: aggregated metrics, significance tests, tables and figures."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from audiorec.report.aggregate import Catalogue, ReportSettings  # noqa: E402
from audiorec.report.build import ReportOutputs, build_report  # noqa: E402
from audiorec.runtime import set_threads, setup_logging  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
set_threads(smk.threads)
# A configured MIR table is a rule input (so editing it re-runs the report): read it from there;
# without one, the table shipped in the package.
report_config = {**smk.params.report, "mir_scores": str(smk.input.mir_scores) if smk.input.get("mir_scores") else None}

build_report(
    run_metrics=list(smk.input.metrics),
    split_stats=smk.input.stats,
    outputs=ReportOutputs(**{name: smk.output[name] for name in ReportOutputs.__dataclass_fields__}),
    settings=ReportSettings.from_config(report_config, k=smk.params.k),
    catalogue=Catalogue(
        model_types=dict(smk.params.model_types),
        backend_types=dict(smk.params.backend_types),
        model_ways=dict(smk.params.model_ways),
    ),
    dataset=smk.wildcards.dataset,
    dataset_format=smk.params.dataset_format,
    protocol=dict(smk.params.protocol),
    run_infos=list(smk.input.runs),
    beyond_files=list(smk.input.beyond),
    beyond_run_files=list(smk.input.beyond_runs),
    artist_files=list(smk.input.artist_metrics),
    train=smk.input.train,
)

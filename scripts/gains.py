"""Snakemake script for rule gains: gains.csv and figures/gains.png (report/gains.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from audiorec.report.aggregate import Catalogue  # noqa: E402
from audiorec.report.gains import GainSettings, build_gains  # noqa: E402
from audiorec.runtime import setup_logging  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
build_gains(
    warm_files=list(smk.input.warm),
    cold_files=list(smk.input.cold),
    catalogue=Catalogue(
        model_types=dict(smk.params.model_types),
        backend_types=dict(smk.params.backend_types),
        model_ways=dict(smk.params.model_ways),
    ),
    settings=GainSettings(k=smk.params.k, resamples=smk.params.resamples, confidence=smk.params.confidence, seed=smk.params.seed),
    table=smk.output.table,
    figure=smk.output.figure,
)

"""Snakemake script for rule evaluate: a run's recs on one split part -> per-user metrics."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

import polars as pl  # noqa: E402

from audiorec.evaluation.metrics import METRICS, per_user_metrics  # noqa: E402
from audiorec.io import write_parquet  # noqa: E402
from audiorec.runtime import set_threads, setup_logging  # noqa: E402

smk = snakemake  # noqa: F821
log = setup_logging(smk.log[0])
set_threads(smk.threads)

recs = pl.read_parquet(smk.input.recs)
truth = pl.read_parquet(smk.input.truth)
metrics = per_user_metrics(recs, truth, int(smk.params.k), source=str(smk.input.recs))
log.info(
    "%s: %d users, means %s",
    smk.input.recs,
    len(metrics),
    ", ".join(f"{m}={metrics[m].mean():.4f}" for m in METRICS),
)
write_parquet(metrics, smk.output[0])

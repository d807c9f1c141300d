"""Snakemake script for rule evaluate_artists: a cold-item run's accuracy per target artist group."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

import polars as pl  # noqa: E402

from audiorec.evaluation.artists import per_user_artist_metrics, read_artists  # noqa: E402
from audiorec.io import write_parquet  # noqa: E402
from audiorec.runtime import set_threads, setup_logging  # noqa: E402

smk = snakemake  # noqa: F821
setup_logging(smk.log[0])
set_threads(smk.threads)

metrics = per_user_artist_metrics(
    pl.read_parquet(smk.input.recs),
    pl.read_parquet(smk.input.truth),
    pl.read_parquet(smk.input.train, columns=["user_id", "track_id"]),
    read_artists(smk.input.artists),
    int(smk.params.k),
    source=str(smk.input.recs),
)
write_parquet(metrics, smk.output[0])

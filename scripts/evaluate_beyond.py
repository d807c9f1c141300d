"""Snakemake script for rule evaluate_beyond: a run's recs on one part -> beyond-accuracy metrics."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

import polars as pl  # noqa: E402

from audiorec.evaluation.beyond import catalogue_metrics, per_user_beyond  # noqa: E402
from audiorec.evaluation.diversity import read_genre_labels  # noqa: E402
from audiorec.io import write_csv, write_parquet  # noqa: E402
from audiorec.runtime import set_threads, setup_logging  # noqa: E402

smk = snakemake  # noqa: F821
log = setup_logging(smk.log[0])
set_threads(smk.threads)

k = int(smk.params.k)
recs = pl.read_parquet(smk.input.recs)
truth = pl.read_parquet(smk.input.truth)
train = pl.read_parquet(smk.input.train, columns=["user_id", "track_id"])
genres = read_genre_labels(smk.input.genres) if smk.input.get("genres") else None
if genres is None:
    log.info("the dataset has no genre labels (id_genres): no diversity column")
per_user = per_user_beyond(recs, truth, train, k, genres, source=str(smk.input.recs))
run = catalogue_metrics(recs, truth, pl.read_parquet(smk.input.catalogue), k)
log.info(
    "%s: %d users, means %s; %s",
    smk.input.recs,
    len(per_user),
    ", ".join(f"{c}={per_user[c].mean():.4f}" for c in per_user.columns if c not in ("user_id", "n_recs", "n_labelled")),
    run,
)
write_parquet(per_user, smk.output.per_user)
write_csv(pl.DataFrame([{"k": k, **run}]), smk.output.run)

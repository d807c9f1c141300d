"""Snakemake script for rule train_artist_mean: one artist_mean model x backend x seed (docs/beyond.md)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from audiorec.models.run import RunPaths, train_run  # noqa: E402
from audiorec.runtime import seed_everything, set_threads, setup_logging  # noqa: E402

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
set_threads(sm.threads)
seed = int(sm.wildcards.seed)
seed_everything(seed)
train_run(
    spec=dict(sm.params.model),
    backend=sm.wildcards.backend,
    seed=seed,
    k=int(sm.params.k),
    paths=RunPaths(
        train=sm.input.train,
        val=sm.input.val,
        test=sm.input.test,
        embeddings=sm.input.embeddings or None,
        catalogue=sm.input.get("catalogue") or None,
        artists=sm.input.artists or None,
        recs_val=sm.output.recs_val,
        recs_test=sm.output.recs_test,
        history=sm.output.history,
        weights=sm.output.weights,
        info=sm.output.info,
    ),
)

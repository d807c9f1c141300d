"""Snakemake script for rule layer_sweep: one model x backend x seed on every cached layer."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from audiorec.analysis.layer_sweep import SweepPaths, sweep_layers  # noqa: E402
from audiorec.runtime import seed_everything, set_threads, setup_logging  # noqa: E402

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
set_threads(sm.threads)
seed = int(sm.wildcards.seed)
seed_everything(seed)
sweep_layers(
    spec=dict(sm.params.model),
    backend=sm.wildcards.backend,
    seed=seed,
    k=int(sm.params.k),
    paths=SweepPaths(
        train=sm.input.train,
        val=sm.input.val,
        test=sm.input.test,
        embeddings=sm.input.embeddings,
        catalogue=sm.input.get("catalogue") or None,
        known=sm.input.known,
        metrics=sm.output.metrics,
        info=sm.output.info,
    ),
)

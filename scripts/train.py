"""Snakemake script for rules train / train_baseline: one model x backend x seed."""

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
named = {"train", "val", "test", "embeddings", "catalogue", "known"}
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
        known=sm.input.known,
        recs_val=sm.output.recs_val,
        recs_test=sm.output.recs_test,
        history=sm.output.history,
        weights=sm.output.weights,
        info=sm.output.info,
        # other jobs' outputs the model type declares (extra_inputs), by name
        extra={name: str(path) for name, path in sm.input.items() if name not in named and path},
    ),
    # model types declared outside the package (config `model_dirs`); reading it from the
    # config rather than params keeps the built-in types' jobs independent of it
    model_dirs=tuple(sm.config.get("model_dirs") or ()),
)

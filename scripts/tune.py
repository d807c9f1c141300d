"""Snakemake script for rules tune / tune_baseline: one study of a model x backend (train/val only)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from audiorec.runtime import seed_everything, set_threads, setup_logging  # noqa: E402
from audiorec.tuning.job import tune  # noqa: E402
from audiorec.tuning.objective import TuningInputs  # noqa: E402
from audiorec.tuning.study import study_seed  # noqa: E402

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
set_threads(sm.threads)
tuning = dict(sm.params.tuning)
seed_everything(int(tuning["seed"]))
wc = sm.wildcards
tune(
    spec=dict(tuning["model"]),
    space=dict(tuning["space"]),
    backend=wc.backend,
    seed=int(tuning["seed"]),
    study_seed=study_seed(wc.dataset, wc.model, wc.backend, int(tuning["seed"])),
    budget=int(tuning["budget"]),
    metric=tuning["metric"],
    k=int(sm.params.k),
    inputs=TuningInputs(
        train=sm.input.train,
        val=sm.input.val,
        known=sm.input.known,
        embeddings=sm.input.embeddings or None,
        catalogue=sm.input.get("catalogue") or None,
    ),
    journal=Path(sm.output.best).with_name("journal.log"),  # kept: a rerun resumes the study
    best=sm.output.best,
    trials=sm.output.trials,
    model_dirs=tuple(sm.config.get("model_dirs") or ()),
)

"""Snakemake script of rule synthesize: generate a synthetic dataset in the Music4All-Onion layout."""

import os
import sys
from pathlib import Path

# The generator parallelises with worker processes (snakemake.threads of them); each should
# use one BLAS thread. Set before numpy is first imported, which is when it takes effect.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from audiorec.data.synthetic import DatasetPaths, SyntheticSettings, generate_dataset  # noqa: E402
from audiorec.runtime import setup_logging  # noqa: E402

sm = snakemake  # noqa: F821
logger = setup_logging(sm.log[0])
settings = SyntheticSettings.from_mapping(sm.params.settings)
paths = DatasetPaths(
    log=Path(sm.output.log),
    genres=Path(sm.output.genres),
    information=Path(sm.output.information),
    tastes=Path(sm.output.tastes),
    audio=Path(sm.output.audio),
)
summary = generate_dataset(settings, paths, threads=sm.threads)
logger.info("synthetic dataset ready: %s", summary)

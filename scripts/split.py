"""Snakemake script for rule split: the listening log -> train/val/test Parquet + stats.csv."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821
# polars sizes its thread pool when first imported: give it the job's threads, not the node's.
os.environ.setdefault("POLARS_MAX_THREADS", str(max(1, int(snakemake.threads))))  # noqa: F821

from audiorec.data.split import SplitSettings, split_log, write_split  # noqa: E402
from audiorec.runtime import set_threads, setup_logging  # noqa: E402

smk = snakemake  # noqa: F821
log = setup_logging(smk.log[0])
set_threads(smk.threads)
where = f"datasets.{smk.wildcards.dataset}.split"
settings = SplitSettings.from_config(smk.params.settings, where=where)
log.info("splitting %s with %s", smk.input.log, settings)
result = split_log(smk.input.log, settings, progress=True, where=where)
write_split(result, smk.output.train, smk.output.val, smk.output.test, smk.output.stats, catalogue=smk.output.catalogue,
            known=smk.output.known)

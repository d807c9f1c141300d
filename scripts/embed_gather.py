"""Rule embed: gather a backend's shards into {backend}.h5 and {backend}.failures.csv."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from audiorec.extraction.jobs import embed_gather  # noqa: E402
from audiorec.runtime import setup_logging  # noqa: E402

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
embed_gather(
    sm.params.backend,
    sm.input.shards,
    sm.input.tracks,
    sm.output.h5,
    sm.output.failures,
    failures_report=sm.params.failures_report,
    runtime={k: sm.config["backends"][sm.wildcards.backend].get(k) for k in sm.params.runtime_keys},
    extra_attrs={"dataset": sm.wildcards.dataset, "backend": sm.wildcards.backend},
)

"""Rule embed_shard: embed one shard of the track index with one backend (resumable)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from audiorec.extraction.jobs import capture_native_stderr, embed_shard  # noqa: E402
from audiorec.runtime import seed_everything, set_threads, setup_logging  # noqa: E402

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
capture_native_stderr()
set_threads(sm.threads)
seed_everything(0)
embed_shard(
    sm.params.backend,
    sm.input.tracks,
    sm.output[0],
    shard=int(sm.wildcards.shard),
    nshards=int(sm.wildcards.nshards),
    threads=sm.threads,
    dataset_dir=sm.params.dataset_dir,
    weights_root=sm.params.weights_root,
    failures_report=sm.params.failures_report,
    # settings that do not change the result: read here, not params, so changing them
    # neither re-runs finished shards nor invalidates resume chunks
    runtime={k: sm.config["backends"][sm.wildcards.backend].get(k) for k in sm.params.runtime_keys},
)

"""Snakemake script for rule probe: linear probes of one backend's cached layers (docs/probes.md)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parent / "src"))  # noqa: F821

from audiorec.probes.fit import ProbeSettings  # noqa: E402
from audiorec.probes.job import ProbeJob, run_probe_job  # noqa: E402
from audiorec.probes.labels import LabelSettings  # noqa: E402
from audiorec.runtime import setup_logging  # noqa: E402

sm = snakemake  # noqa: F821
setup_logging(sm.log[0])
# no set_threads: the job's `threads` are its worker processes, each holding BLAS to one thread
# (audiorec.probes.workers), and it needs no torch (set_threads would import it: ~1 s a job)
cfg = dict(sm.params.probes)
tasks = cfg.get("tasks")
run_probe_job(
    ProbeJob(
        dataset_dir=str(sm.params.dataset_dir),
        dataset_format=str(sm.params.dataset_format),
        scores=sm.output.scores,
        predictions=sm.output.predictions,
        info=sm.output.info,
        embeddings=sm.input.embeddings or None,
        tracks=sm.input.tracks or None,
        random_dim=int(cfg["random_dim"]),
    ),
    LabelSettings(tasks=tuple(tasks) if tasks is not None else None, max_labels=int(cfg["max_labels"]), min_count=int(cfg["min_count"])),
    ProbeSettings(
        folds=int(cfg["folds"]),
        inner_folds=int(cfg["inner_folds"]),
        seed=int(cfg["seed"]),
        alphas=tuple(float(a) for a in cfg["alphas"]),
        classifier=cfg["classifier"],
        mlp_hidden=int(cfg["mlp_hidden"]),
    ),
    backend=sm.wildcards.backend,
    workers=sm.threads,  # outer folds in parallel processes (audiorec.probes.workers)
)

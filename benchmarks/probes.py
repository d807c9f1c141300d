"""Wall time of the probe job (rule `probe`) per backend and per layer (worker seconds).

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/probes.py \
        --dataset resources/datasets/synthetic --tracks results/synthetic/tracks.parquet \
        --caches results/synthetic/embeddings/{oracle,mfcc,musicnn}.h5 [--classifier ridge] [--workers 2]

Runs `run_probe_job` exactly as the rule does (default `probes:` settings) on each cache and
on `random` vectors, writing into a temporary folder; prints a Markdown table (wall and CPU
seconds) and the machine's load average before and after (wall times only mean something on
a quiet machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the forked workers): unlike the
    wall time, barely moved by other jobs competing for the cores."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> None:
    from audiorec.probes.fit import ProbeSettings
    from audiorec.probes.job import ProbeJob, run_probe_job
    from audiorec.probes.labels import LabelSettings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="dataset folder with the label files")
    parser.add_argument("--format", default="synthetic", help="dataset format (datasets.<name>.format)")
    parser.add_argument("--tracks", required=True, help="tracks.parquet (for the random vectors)")
    parser.add_argument("--caches", nargs="*", default=[], help="embedding caches (.h5), backend = file stem")
    parser.add_argument("--classifier", default="logistic", choices=["logistic", "ridge", "mlp"])
    parser.add_argument("--workers", type=int, default=1, help="worker processes (the rule's threads)")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("| backend | job wall s | job CPU s | per layer s (worker time) |\n|---|---|---|---|")
    for cache in [*args.caches, None]:
        backend = Path(cache).stem if cache else "random"
        with tempfile.TemporaryDirectory() as out:
            job = ProbeJob(dataset_dir=args.dataset, dataset_format=args.format, scores=f"{out}/scores.csv",
                           predictions=f"{out}/predictions.parquet", info=f"{out}/probe.json",
                           embeddings=cache, tracks=args.tracks)
            started, cpu = time.perf_counter(), _cpu()
            run_probe_job(job, LabelSettings(), ProbeSettings(classifier=args.classifier), backend, workers=args.workers)
            seconds, cpu = time.perf_counter() - started, _cpu() - cpu
            layers = json.loads(Path(job.info).read_text())["seconds_per_layer"]
        print(f"| {backend} | {seconds:.1f} | {cpu:.1f} | {', '.join(f'{v:.1f}' for v in layers.values())} |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()

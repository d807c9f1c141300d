"""What a tuning study costs (docs/models.md, "Tuning"): a short study of the Shallow Net and of
BERT4Rec at the default synthetic size, timed per trial, extrapolated to a 20-trial study.

    python benchmarks/tuning.py [--models shallow bert4rec] [--budget 6] [--threads 1]
                                [--out benchmarks/out/tuning.json]

Data: benchmarks/interactions.py at the default pipeline's size (1,500 users x 1,000 tracks,
~71k train rows, 200-dim content vectors; no audio), written as split parts and an embedding
file so the study runs exactly as rule `tune` runs it (audiorec.tuning.job.tune: train and val
only, TPE + median pruning, journal). Model settings: config.yaml's; search spaces:
configs/tuning.yaml's. Each model runs in its own process.

Per study: wall time, complete / pruned / failed trials, mean seconds and epochs per complete
trial, seconds per epoch. A 20-trial study is extrapolated as 20 x the mean complete trial (an
upper bound: the pruner only acts after 5 complete trials, and a pruned trial costs less). The paper-size estimate (RESULTS.md)
multiplies the per-epoch times measured at paper size in "Recommenders (issue 6)" by epochs per
trial and trials.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "src")]


def study(model: str, budget: int, threads: int) -> dict:
    import polars as pl
    import torch
    from interactions import cached_split

    from audiorec.extraction.store import write_embeddings
    from audiorec.models.registry import declaration
    from audiorec.tuning.job import tune
    from audiorec.tuning.objective import TuningInputs
    from audiorec.tuning.space import model_settings

    torch.set_num_threads(threads)
    spec = {"type": model, **yaml.safe_load((ROOT / "config.yaml").read_text())["models"][model]}
    # the schema's defaults, as the workflow fills them (so the first trial runs them)
    decl = declaration(model)
    schema = yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())
    for name, props in model_settings(decl.settings, list(decl.uses), schema).items():
        if "default" in props:
            spec.setdefault(name, props["default"])
    tuning = yaml.safe_load((ROOT / "configs" / "tuning.yaml").read_text())["tuning"]
    space = tuning["models"][f"{model}_tuned"]
    split = cached_split("default", cache_dir=str(HERE / "out" / "data"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("train", "val"):
            getattr(split, name).write_parquet(root / f"{name}.parquet")
        write_embeddings(root / "emb.h5", split.track_ids, split.vectors)
        started = time.perf_counter()
        best = tune(
            spec, space, "emb", seed=0, study_seed=0, budget=budget, metric=tuning["metric"], k=50,
            inputs=TuningInputs(train=root / "train.parquet", val=root / "val.parquet", embeddings=root / "emb.h5"),
            journal=root / "journal.log", best=root / "best.json", trials=root / "trials.csv",
        )  # fmt: skip
        wall = time.perf_counter() - started
        trials = pl.read_csv(root / "trials.csv")
    complete = trials.filter(pl.col("state") == "COMPLETE")
    finished = trials.filter(pl.col("state").is_in(["COMPLETE", "PRUNED"]))
    per_trial = float(complete["seconds"].mean())
    epochs = float(complete["epochs_run"].mean())
    return {
        "model": model,
        "budget": budget,
        "threads": threads,
        "wall_seconds": wall,
        "n_finished": best["n_finished"],
        "n_complete": best["n_complete"],
        "n_pruned": best["n_pruned"],
        "n_failed": best["n_failed"],
        "seconds_per_complete_trial": per_trial,
        "epochs_per_complete_trial": epochs,
        "max_epochs": spec["epochs"],
        "seconds_per_epoch": per_trial / epochs,
        "pruned_seconds": float(trials.filter(pl.col("state") == "PRUNED")["seconds"].sum() or 0.0),
        "seconds_per_finished_trial": float(finished["seconds"].mean()),
        "study_20_trials_seconds_est": 20 * per_trial,
        "val_default": best["default_value"],
        "val_best": best["value"],
        "best_settings": best["settings"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["shallow", "bert4rec"])
    parser.add_argument("--budget", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(HERE / "out" / "tuning.json"))
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(study(args.case, args.budget, args.threads)))
        return
    results = []
    for model in args.models:
        cmd = [sys.executable, __file__, "--case", model, "--budget", str(args.budget), "--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

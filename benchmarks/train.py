"""Time per epoch and peak memory of the Shallow Net, BERT4Rec and SASRec, at the default and
paper size, for each way of using content (`items:`).

    python benchmarks/train.py [--scales default paper] [--models shallow bert4rec sasrec]
                               [--items content id hybrid finetune matched_random weighted]
                               [--layers 13]
                               [--paper-steps 8] [--threads 2] [--out benchmarks/out/train.json]

Data: benchmarks/interactions.py (synthetic listening with taste clusters, long-tailed
popularity and album sequences; 200-dim synthetic content vectors like MusiCNN's; no
audio), cached under benchmarks/out/data/. Settings: the paper's (Shallow Net: batch
10,000, 20 negatives, dimension-preserving tower; BERT4Rec: hidden = vector width (200),
2 layers, 2 heads, feed-forward 256, batch 128, max length 300; SASRec the same), pretrained
vectors frozen (`--items content`, the default; `id` uses hidden = random_dim 64 for the
transformers, as the `random` backend). `--items weighted` is `layers: weighted` over a stack
of `--layers` layers of that width (the vectors plus growing noise, a stand-in for a
transformer's 13 layers): what a learned layer mixture costs per epoch.

Each case runs in its own process, so its peak RSS is its own. At the default size whole
epochs are timed; at paper size a CPU epoch takes many minutes, so `--paper-steps` steps are
timed and the epoch time is extrapolated from the mean step (steps/epoch x mean step): an
estimate, reported as such. One validation pass (full ranking of every val user over all
tracks) is timed too.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "src")]

SETTINGS = {
    "shallow": dict(batch_size=10000, n_negatives=20, margin=0.2),
    "bert4rec": dict(batch_size=128, max_len=300, hidden_size=None, n_layers=2, n_heads=2, inner_size=256),
    "sasrec": dict(batch_size=128, max_len=300, hidden_size=None, n_layers=2, n_heads=2, inner_size=256),
}


def run_case(
    model_name: str, scale: str, epochs: int, paper_steps: int, threads: int, precision: str = "fp32", items: str = "content",
    n_layers: int = 13,
) -> dict:
    import numpy as np
    import torch

    from audiorec.models.bert4rec import Bert4Rec
    from audiorec.models.data import split_from_frames
    from audiorec.models.item_vectors import random_item_vectors
    from audiorec.models.items import ItemSettings, matched_random_vectors
    from audiorec.models.sasrec import SASRec
    from audiorec.models.shallow import ShallowNet
    from audiorec.models.training import evaluate_part
    from interactions import cached_split

    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    synthetic = cached_split(scale)
    data = split_from_frames({"train": synthetic.train, "val": synthetic.val, "test": synthetic.test})
    load_s = time.perf_counter() - t0
    torch.manual_seed(0)
    cls = {"shallow": ShallowNet, "bert4rec": Bert4Rec, "sasrec": SASRec}[model_name]
    extra = {"precision": precision} if model_name != "shallow" else {}
    vectors = synthetic.vectors
    if items == "id":
        vectors = random_item_vectors(data.n_items, 64, 0).vectors
    elif items == "matched_random":
        vectors = matched_random_vectors(vectors, 0)
    settings = ItemSettings("content", layers="weighted") if items == "weighted" else ItemSettings(items)
    if items == "weighted":
        rng = np.random.default_rng(0)
        spread = float(vectors.std())
        noise = [rng.standard_normal(vectors.shape).astype(np.float32) * spread * i / n_layers for i in range(n_layers)]
        vectors = np.stack([vectors + e for e in noise], axis=1)
    model = cls(data, vectors, **SETTINGS[model_name], **extra, items=settings)
    optimizer = torch.optim.Adam(model.optimizer_groups(1e-3))
    model.train()
    steps = model.steps_per_epoch()
    timed_steps = steps if scale != "paper" else min(paper_steps, steps)
    runs = epochs if scale != "paper" else 1
    seconds = []
    for epoch in range(runs):
        start = time.perf_counter()
        model.train_epoch(optimizer, np.random.default_rng(epoch), max_steps=timed_steps)
        seconds.append(time.perf_counter() - start)
    per_step = float(np.median(seconds)) / timed_steps
    model.eval()
    start = time.perf_counter()
    with torch.no_grad():
        val = evaluate_part(model, data, data.parts["val"], 50)
    val_s = time.perf_counter() - start
    return {
        "model": model_name if model_name == "shallow" else f"{model_name} ({precision})",
        "items_mode": items,
        "scale": scale,
        "users": data.n_users,
        "items": data.n_items,
        "train_rows": data.n_train,
        "val_users": int(len(data.parts["val"].users)),
        "steps_per_epoch": steps,
        "timed_steps": timed_steps * runs,
        "epoch_s": per_step * steps,
        "extrapolated": timed_steps < steps,
        "val_pass_s": val_s,
        "val_ndcg_after": val["ndcg"],
        "data_s": load_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": threads,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", nargs="+", default=["default", "paper"])
    parser.add_argument("--models", nargs="+", default=["shallow", "bert4rec", "sasrec"])
    parser.add_argument("--items", nargs="+", default=["content"], choices=["content", "id", "hybrid", "finetune", "matched_random", "weighted"])
    parser.add_argument("--layers", type=int, default=13, help="cached layers mixed by --items weighted")
    parser.add_argument("--epochs", type=int, default=3, help="whole epochs timed at the default size (median)")
    parser.add_argument("--paper-steps", type=int, default=8, help="steps timed at paper size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16"], help="BERT4Rec matmul precision(s)")
    parser.add_argument("--out", default="benchmarks/out/train.json")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case in this process
    args = parser.parse_args()
    if args.case:
        model_name, scale, precision, items = args.case.split(":")
        print(json.dumps(run_case(model_name, scale, args.epochs, args.paper_steps, args.threads, precision, items, args.layers)))
        return
    results = []
    for scale in args.scales:
        cases = [(m, p, i) for m in args.models for p in (args.precision if m != "shallow" else ["fp32"]) for i in args.items]
        for model_name, precision, items in cases:
            cmd = [sys.executable, __file__, "--case", f"{model_name}:{scale}:{precision}:{items}", "--epochs", str(args.epochs),
                   "--paper-steps", str(args.paper_steps), "--threads", str(args.threads), "--layers", str(args.layers)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode:
                raise SystemExit(f"case {model_name}:{scale}:{precision}:{items} failed:\n{proc.stderr[-4000:]}")
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), file=sys.stderr)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print("| model | items | scale | users | tracks | train rows | steps/epoch | time/epoch | val pass | peak RSS |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        est = " (est. from %d steps)" % r["timed_steps"] if r["extrapolated"] else ""
        print(
            f"| {r['model']} | {r['items_mode']} | {r['scale']} | {r['users']:,} | {r['items']:,} | {r['train_rows']:,} | {r['steps_per_epoch']} "
            f"| {r['epoch_s']:.1f} s{est} | {r['val_pass_s']:.1f} s | {r['peak_rss_mb']:,.0f} MB |"
        )


if __name__ == "__main__":
    main()

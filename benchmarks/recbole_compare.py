"""Our BERT4Rec / SASRec against RecBole's on the same data, hyperparameters and evaluation.

    python benchmarks/recbole_compare.py [--model bert4rec|sasrec] [--scale default] [--epochs 40]
        [--threads 2] [--recbole-python /work/venvs/recbole/bin/python] [--out benchmarks/out/recbole_default.json]
    python benchmarks/recbole_compare.py --scale paper --timing-steps 4    # time only, extrapolated
    python benchmarks/recbole_compare.py --model sasrec --max-len 50 --epochs 12 --recbole-max-seconds 3600
        # quality at a shorter max length, RecBole's run bounded in time (both sides compared
        # over the epochs RecBole ran); --ours-epochs N --skip-recbole: ours alone, longer

RecBole (https://github.com/RUCAIBox/RecBole, `pip install torch==2.13.0 recbole` in its own
venv) runs in a subprocess of that venv; nothing of it is imported here. Both models learn
their item embeddings (our `random` backend: RecBole's BERT4Rec has no content input).

Matched: hidden 64 (default size) or 200 (paper size), 2 layers, 2 heads, feed-forward 256,
dropout 0.1 (hidden and attention), GELU, LayerNorm eps 1e-12, init std 0.02, mask ratio 0.2,
cross entropy over all items, max length 300, batch 128, Adam lr 1e-3, one training sequence
per user per epoch (each user's latest 300 train tracks: RecBole's "benchmark file" input,
so that it does not expand every prefix into a sample, which would make its epochs 100x
larger and incomparable). Not matched, by design of each library: RecBole adds an output
FFN + GELU + LayerNorm and a per-item output bias (ours: tied output layer, no bias, as the
paper's model), fills 60 (= 0.2 x 300) mask slots per sequence and always pads to 300;
its `ft_ratio` is 0 (RecBole's own code reads it so).

SASRec (`--model sasrec`): the same settings (no mask ratio), full-softmax CE over all
items. Ours predicts the next track at every position of one sequence per user per epoch;
RecBole's SASRec predicts only the last item of each training row, so it gets one row per
train position (every prefix of the user's latest tracks, at most 300 long, with the track
after it: its usual data augmentation, written as a benchmark file): both see every
next-track target once per epoch. At paper size (timing only) only the rows of the timed
steps are written; the epoch is extrapolated to one row per train position.

RecBole 1.2.1's `recbole.model.sequential_recommender` package imports its SINE model, whose
module switches autograd's anomaly detection on for the whole process: every RecBole
sequential model then trains in that debugging mode (slower per step: benchmarks/RESULTS.md; the
numbers unchanged). The worker switches it off again unless `--recbole-detect-anomaly`.

Evaluation is ours for both: each epoch, every val user's scores over all tracks (RecBole:
`full_sort_predict`), train tracks removed, top-50, `ranking_metrics`; the reported quality
is val and test HR@50 / NDCG@50 at the epoch with the best val NDCG@50.
Time per epoch counts training only (data loading and masking included, evaluation not).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
K = 50
HYPER = dict(n_layers=2, n_heads=2, inner_size=256, dropout=0.1, mask_prob=0.2, max_len=300, batch_size=128, lr=1e-3)


# ---------------------------------------------------------------- RecBole side (its own venv)


def recbole_worker(spec_path: str) -> None:
    """Train RecBole's BERT4Rec or SASRec on the exported split; write per-epoch timing and top-K."""
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.data.interaction import Interaction
    from recbole.model.sequential_recommender import BERT4Rec, SASRec
    from recbole.utils import init_seed

    spec = json.loads(Path(spec_path).read_text())
    # Importing recbole.model.sequential_recommender runs its sine.py, which switches autograd's
    # anomaly detection on for the whole process (a debugging mode: a stack trace per op, a NaN
    # check per backward). It changes no number, only the time: off unless asked for.
    torch.autograd.set_detect_anomaly(bool(spec.get("recbole_detect_anomaly", False)))
    sasrec = spec["model"] == "sasrec"
    arrays = np.load(spec["arrays"])
    indptr, indices = arrays["indptr"], arrays["indices"]
    max_len = spec["max_len"]
    torch.set_num_threads(spec["threads"])
    root = Path(spec["workdir"]) / "bench"
    root.mkdir(parents=True, exist_ok=True)

    def history(u: int) -> np.ndarray:
        return indices[indptr[u] : indptr[u + 1]][-max_len:]

    header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    augmented_rows = 0
    with open(root / "bench.train.inter", "w") as f:
        f.write(header)
        if sasrec:  # one row per next-track target: every prefix (at most max_len long) + the next track
            limit = spec["timing_steps"] * spec["batch_size"] * 2 if spec["timing_steps"] else None
            for u in np.random.default_rng(spec["seed"]).permutation(len(indptr) - 1):
                full = indices[indptr[u] : indptr[u + 1]][-(max_len + 1) :]
                for t in range(1, len(full)):
                    f.write(f"{u}\t{' '.join(map(str, full[max(0, t - max_len) : t]))}\t{full[t]}\n")
                    augmented_rows += 1
                if limit and augmented_rows >= limit:
                    break
        else:
            for u in range(len(indptr) - 1):
                seq = history(u)
                f.write(f"{u}\t{' '.join(map(str, seq))}\t{seq[-1]}\n")
    for name in ("valid", "test"):  # RecBole insists on them; our evaluation does not use them
        with open(root / f"bench.{name}.inter", "w") as f:
            f.write(header)
            for u in arrays["val_users"][:5]:
                seq = history(int(u))
                f.write(f"{u}\t{' '.join(map(str, seq[:-1]))}\t{seq[-1]}\n")

    n_targets = int(sum(min(n, max_len + 1) - 1 for n in np.diff(indptr) if n > 1))  # next-track targets per epoch
    model_options = (
        {"hidden_act": "gelu", "layer_norm_eps": 1e-12, "initializer_range": 0.02}
        if sasrec
        else {"mask_ratio": spec["mask_prob"], "ft_ratio": 0.0}
    )
    config = Config(
        model="SASRec" if sasrec else "BERT4Rec",
        dataset="bench",
        config_dict={
            "data_path": str(root.parent),
            "benchmark_filename": ["train", "valid", "test"],
            "load_col": {"inter": ["user_id", "item_id_list", "item_id"]},
            "USER_ID_FIELD": "user_id",
            "ITEM_ID_FIELD": "item_id",
            "alias_of_item_id": ["item_id_list"],  # the lists share the item vocabulary
            "MAX_ITEM_LIST_LENGTH": max_len,
            "hidden_size": spec["hidden"],
            "n_layers": spec["n_layers"],
            "n_heads": spec["n_heads"],
            "inner_size": spec["inner_size"],
            "hidden_dropout_prob": spec["dropout"],
            "attn_dropout_prob": spec["dropout"],
            **model_options,
            "loss_type": "CE",
            "train_batch_size": spec["batch_size"],
            "learning_rate": spec["lr"],
            "train_neg_sample_args": None,
            "eval_args": {"order": "TO", "mode": "full"},
            "device": "cpu",
            "use_gpu": False,
            "seed": spec["seed"],
            "reproducibility": True,
            "show_progress": False,
            "checkpoint_dir": str(Path(spec["workdir"]) / "saved"),
            "state": "ERROR",
        },
    )
    init_seed(config["seed"], config["reproducibility"])
    torch.set_num_threads(spec["threads"])
    dataset = create_dataset(config)
    train_data, _, _ = data_preparation(config, dataset)
    model = (SASRec if sasrec else BERT4Rec)(config, train_data.dataset)
    optimizer = torch.optim.Adam(model.parameters(), lr=spec["lr"])
    # RecBole's internal item ids -> our item indices (0 is its padding token)
    tokens = dataset.field2id_token["item_id"]
    to_ours = np.array([-1] + [int(t) for t in tokens[1:]], dtype=np.int64)
    n_ours = spec["n_items"]

    def top_k(users: np.ndarray) -> np.ndarray:
        model.eval()
        out = np.full((len(users), K), -1, dtype=np.int64)
        with torch.no_grad():
            for start in range(0, len(users), 256):
                chunk = users[start : start + 256]
                seqs = np.zeros((len(chunk), max_len), dtype=np.int64)
                lens = np.zeros(len(chunk), dtype=np.int64)
                for row, u in enumerate(chunk):
                    h = dataset.token2id("item_id", [str(i) for i in history(int(u))])
                    seqs[row, : len(h)] = h
                    lens[row] = len(h)
                inter = Interaction({"item_id_list": torch.from_numpy(seqs), "item_length": torch.from_numpy(lens)})
                scores = model.full_sort_predict(inter)  # [B, n_internal]
                ours = torch.full((len(chunk), n_ours), -torch.inf)
                ours[:, torch.from_numpy(to_ours[1:])] = scores[:, 1:]
                for row, u in enumerate(chunk):
                    ours[row, torch.from_numpy(indices[indptr[u] : indptr[u + 1]])] = -torch.inf
                out[start : start + len(chunk)] = ours.topk(K, dim=1).indices.numpy()
        model.train()
        return out

    epochs = []
    steps_done = 0
    started = time.perf_counter()
    for epoch in range(spec["epochs"]):
        if spec.get("max_seconds") and time.perf_counter() - started > spec["max_seconds"]:
            break  # the time bound: the report compares both sides over the epochs run here
        model.train()
        start = time.perf_counter()
        steps = 0
        for batch in train_data:
            optimizer.zero_grad()
            loss = model.calculate_loss(batch)
            loss.backward()
            optimizer.step()
            steps += 1
            if spec["timing_steps"] and steps >= spec["timing_steps"]:
                break
        seconds = time.perf_counter() - start
        steps_done += steps
        record = {"epoch": epoch + 1, "seconds": seconds, "steps": steps, "loss": float(loss)}
        if not spec["timing_steps"]:
            record["val"] = top_k(arrays["val_users"]).tolist()
            record["test"] = top_k(arrays["test_users"]).tolist()
        epochs.append(record)
    steps_per_epoch = -(-n_targets // spec["batch_size"]) if sasrec and spec["timing_steps"] else len(train_data)
    result = {
        "epochs": epochs,
        "steps_per_epoch": steps_per_epoch,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    Path(spec["result"]).write_text(json.dumps(result))


# ---------------------------------------------------------------- our side


def ours(
    data, hidden: int, epochs: int, timing_steps: int, threads: int, seed: int, precision: str = "fp32", model_name: str = "bert4rec",
    max_len: int = HYPER["max_len"],
) -> dict:
    import torch

    from audiorec.models.bert4rec import Bert4Rec
    from audiorec.models.sasrec import SASRec

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    hyper = {**HYPER, "max_len": max_len}
    if model_name == "sasrec":
        model = SASRec(data, None, hidden_size=hidden, precision=precision, **{k: v for k, v in hyper.items() if k not in ("lr", "mask_prob")})
    else:
        model = Bert4Rec(data, None, hidden_size=hidden, precision=precision, **{k: v for k, v in hyper.items() if k != "lr"})
    optimizer = torch.optim.Adam(model.parameters(), lr=HYPER["lr"])
    records = []
    for epoch in range(1, epochs + 1):
        torch.manual_seed(seed * 1000 + epoch)
        model.train()
        start = time.perf_counter()
        loss = model.train_epoch(optimizer, np.random.default_rng([seed, epoch]), max_steps=timing_steps or None)
        seconds = time.perf_counter() - start
        record = {"epoch": epoch, "seconds": seconds, "steps": min(timing_steps or 10**9, model.steps_per_epoch()), "loss": loss}
        if not timing_steps:
            model.eval()
            factors = model.factors()
            record["val"] = factors.rank(data.parts["val"].users, data.train, K).items.tolist()
            record["test"] = factors.rank(data.parts["test"].users, data.train, K).items.tolist()
        records.append(record)
    return {"epochs": records, "steps_per_epoch": model.steps_per_epoch(), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def quality(data, records: list[dict]) -> dict:
    """HR/NDCG@50 per epoch with our metric code; the epoch with the best val NDCG."""
    import torch

    from audiorec.evaluation.metrics import ranking_metrics
    from audiorec.evaluation.ranking import TopK, hit_matrix

    def metrics(part, items) -> dict:
        top = TopK(users=data.parts[part].users, items=np.asarray(items), scores=np.zeros(np.shape(items), dtype=np.float32))
        m = ranking_metrics(hit_matrix(top, data.parts[part].relevant), torch.from_numpy(data.parts[part].n_relevant), K)
        return {"hr": float(m["hitrate"].mean()), "ndcg": float(m["ndcg"].mean()), "ndcg_per_user": m["ndcg"].tolist()}

    per_epoch = [{"epoch": r["epoch"], "val": metrics("val", r["val"]), "test": metrics("test", r["test"])} for r in records]
    best = max(per_epoch, key=lambda e: e["val"]["ndcg"])
    for e in per_epoch:  # per-user values only at the best epoch (the paired test), not for every epoch
        if e is not best:
            for part in ("val", "test"):
                e[part].pop("ndcg_per_user")
    return {"best": best, "curve": [(e["epoch"], round(e["val"]["ndcg"], 4)) for e in per_epoch]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="bert4rec", choices=["bert4rec", "sasrec"])
    parser.add_argument("--scale", default="default", choices=["default", "paper"])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--ours-epochs", type=int, default=None, help="our model's epochs (default: --epochs, matched)")
    parser.add_argument("--skip-recbole", action="store_true", help="run ours only (e.g. a longer run beside a matched one)")
    parser.add_argument("--timing-steps", type=int, default=0, help="only time this many steps per epoch (no quality)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-len", type=int, default=HYPER["max_len"], help="longest sequence, both sides (300: the paper's)")
    parser.add_argument(
        "--recbole-detect-anomaly", action="store_true",
        help="leave on autograd's anomaly detection, which importing RecBole 1.2.1's sequential models switches on (its sine.py)",
    )
    parser.add_argument(
        "--recbole-max-seconds", type=float, default=0,
        help="start no RecBole epoch after this many seconds; quality then compares both sides over the epochs RecBole ran",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recbole-python", default="/work/venvs/recbole/bin/python")
    parser.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16"], help="our BERT4Rec's matmul precision(s)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--ours-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        recbole_worker(args.worker)
        return
    if args.ours_only:  # ours in a fresh process too, so that both peak RSS figures are per process
        spec = json.loads(Path(args.out).read_text())
        sys.path[:0] = [str(HERE), str(HERE.parent / "src")]
        data = _load(spec["scale"])
        result = ours(
            data, spec["hidden"], spec["ours_epochs"] or spec["epochs"], spec["timing_steps"], spec["threads"], spec["seed"], spec["precision"], spec["model"],
            spec["max_len"],
        )
        Path(spec["result"]).write_text(json.dumps(result))
        return

    sys.path[:0] = [str(HERE), str(HERE.parent / "src")]
    hidden = 64 if args.scale == "default" else 200
    data = _load(args.scale)
    out = Path(args.out or f"benchmarks/out/recbole_{args.model}_{args.scale}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="recbole-") as tmp:
        np.savez(
            Path(tmp) / "split.npz", indptr=data.train.indptr, indices=data.train.indices,
            val_users=data.parts["val"].users, test_users=data.parts["test"].users,
        )
        common = {
            **HYPER, "max_len": args.max_len, "ours_epochs": args.ours_epochs, "recbole_detect_anomaly": args.recbole_detect_anomaly,
            "max_seconds": args.recbole_max_seconds, "hidden": hidden, "epochs": args.epochs, "timing_steps": args.timing_steps, "threads": args.threads,
            "seed": args.seed, "n_items": data.n_items, "model": args.model, "workdir": tmp, "arrays": str(Path(tmp) / "split.npz"), "scale": args.scale,
        }
        results = {}
        variants = [(f"ours ({p})", sys.executable, "--ours-only", p) for p in args.precision]
        sides = [*variants] + ([] if args.skip_recbole else [("recbole", args.recbole_python, "--worker", "fp32")])
        for name, python, flag, precision in sides:
            tag = name.replace(" ", "_").replace("(", "").replace(")", "")
            spec_path = Path(tmp) / f"{tag}.json"
            spec_path.write_text(json.dumps({**common, "precision": precision, "result": str(Path(tmp) / f"{tag}.result.json")}))
            argv = [python, __file__, flag, str(spec_path)] if flag == "--worker" else [python, __file__, flag, "--out", str(spec_path)]
            started = time.perf_counter()
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            if proc.returncode:
                raise SystemExit(f"{name} failed:\n{proc.stderr[-6000:]}")
            results[name] = json.loads((Path(tmp) / f"{tag}.result.json").read_text())
            results[name]["wall_s"] = time.perf_counter() - started
    report = {
        "model": args.model, "scale": args.scale, "hidden": hidden, "max_len": args.max_len, "threads": args.threads,
        "recbole_detect_anomaly": args.recbole_detect_anomaly,
        "epochs": args.epochs, "ours_epochs": args.ours_epochs or args.epochs, "timing_steps": args.timing_steps,
    }
    # same epochs on both sides: a time-bounded RecBole run cuts the comparison to the epochs it ran
    n_epochs = min(len(res["epochs"]) for res in results.values())
    report["epochs_compared"] = n_epochs
    for name, res in results.items():
        secs = [e["seconds"] / e["steps"] * res["steps_per_epoch"] for e in res["epochs"]]
        entry = {
            "epoch_s_median": float(np.median(secs)),
            "extrapolated": bool(args.timing_steps),
            "steps_per_epoch": res["steps_per_epoch"],
            "peak_rss_mb": res["peak_rss_mb"],
        }
        if not args.timing_steps:
            entry.update(quality(data, res["epochs"][:n_epochs]))
        report[name] = entry
    report["speedup"] = {n: report["recbole"]["epoch_s_median"] / report[n]["epoch_s_median"] for n, *_ in variants if "recbole" in report}
    out.write_text(json.dumps(report, indent=2))
    print(f"| | time/epoch{' (extrapolated)' if args.timing_steps else ''} | peak RSS | best epoch | val HR@50 | val NDCG@50 | test HR@50 | test NDCG@50 |")
    print("|---|---|---|---|---|---|---|---|")
    for name in [n for n, *_ in sides]:
        r = report[name]
        q = r.get("best")
        cells = (
            f"{q['epoch']} | {q['val']['hr']:.4f} | {q['val']['ndcg']:.4f} | {q['test']['hr']:.4f} | {q['test']['ndcg']:.4f}"
            if q else "- | - | - | - | -"
        )
        print(f"| {name} | {r['epoch_s_median']:.1f} s | {r['peak_rss_mb']:,.0f} MB | {cells} |")
    if "recbole" in report and not args.timing_steps:
        for n, *_ in variants:  # paired over the same test users: ours minus RecBole at each side's best val epoch
            diff = np.subtract(report[n]["best"]["test"]["ndcg_per_user"], report["recbole"]["best"]["test"]["ndcg_per_user"])
            se = diff.std(ddof=1) / np.sqrt(len(diff))
            report.setdefault("paired_test_ndcg", {})[n] = {"mean_diff": float(diff.mean()), "se": float(se), "t": float(diff.mean() / se)}
            print(f"{n} - recbole, test NDCG@50 per user: {diff.mean():+.4f} (SE {se:.4f}, t {diff.mean() / se:.2f}, {len(diff)} users)")
        out.write_text(json.dumps(report, indent=2))
    print(f"epochs compared: {report['epochs_compared']}")
    print("\nspeed-up per epoch: " + ", ".join(f"{n} {x:.1f}x" for n, x in report["speedup"].items()))


def _load(scale: str):
    from audiorec.models.data import split_from_frames
    from interactions import cached_split

    synthetic = cached_split(scale)
    return split_from_frames({"train": synthetic.train, "val": synthetic.val, "test": synthetic.test})


if __name__ == "__main__":
    main()

"""Seconds of an `ials` fit at the paper's size: 17k users x 56k tracks, ~5.1M distinct pairs
(Music4All-Onion's train window, ~300 tracks per user), on a synthetic Zipf-like matrix; then
epochs of content2cf's regression and of contrastive's InfoNCE projection onto its item factors.

    PYTHONPATH=src python benchmarks/ials.py                                # factors 64 and 128, 15 iterations
    PYTHONPATH=src python benchmarks/ials.py --factors 64 --iterations 15 --threads 2
    PYTHONPATH=src python benchmarks/ials.py --factors 128 --content-dims 512 1024 --skip content2cf

Times `audiorec.models.ials.fit_factors` (implicit's ALS, BLAS held to one thread, as the
train job runs it) and the whole model build (matrix from SplitData-like arrays, fit, zeroing
of unheard tracks). Prints a Markdown table; record it in benchmarks/RESULTS.md with `uptime`.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def zipf_pairs(n_users: int, n_items: int, target_pairs: int, exponent: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(indptr, indices) of a users x items CSR with ~target_pairs distinct pairs: per-user
    lengths log-normal around the mean, tracks drawn by a Zipf popularity (duplicates within
    a user dropped, so the popular head is denser than the tail, as in a real log)."""
    rng = np.random.default_rng(seed)
    mean = target_pairs / n_users
    lengths = np.maximum(1, rng.lognormal(np.log(mean) - 0.5, 1.0, n_users)).astype(np.int64)
    lengths = np.minimum(lengths, n_items // 2)
    cdf = np.cumsum(1.0 / np.arange(1, n_items + 1) ** exponent)
    cdf /= cdf[-1]
    popularity_order = rng.permutation(n_items)
    oversample = 1.0
    for _ in range(6):  # scale the draws until the distinct pairs reach the target
        draws = np.maximum(1, (lengths * oversample).astype(np.int64))
        users = np.repeat(np.arange(n_users, dtype=np.int64), draws)
        items = popularity_order[np.searchsorted(cdf, rng.random(len(users)))]
        cells = np.unique(users * n_items + items)
        if len(cells) >= 0.99 * target_pairs:
            break
        oversample *= target_pairs / len(cells)
    users, items = cells // n_items, cells % n_items
    indptr = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=n_users))])
    return indptr, items.astype(np.int64)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=17_000)
    ap.add_argument("--items", type=int, default=56_000)
    ap.add_argument("--pairs", type=int, default=5_100_000)
    ap.add_argument("--zipf", type=float, default=0.9)
    ap.add_argument("--factors", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--iterations", type=int, default=15)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--content-dims", type=int, nargs="*", default=[512],
                    help="also time content2cf's regression epochs onto the last fit's factors, per content width")
    ap.add_argument("--epochs", type=int, default=3, help="content2cf and contrastive epochs timed (early stopping off)")
    ap.add_argument("--content-threads", type=int, default=None,
                    help="torch threads of the content models (default --threads; 1 is steadier on a shared machine)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["content2cf", "contrastive", "cmf"], help="content models not timed")
    args = ap.parse_args()

    import implicit
    import torch

    from audiorec.evaluation.ranking import Seen
    from audiorec.models.data import SplitData
    from audiorec.models.ials import IALS, IALSSettings

    t = time.perf_counter()
    indptr, indices = zipf_pairs(args.users, args.items, args.pairs, args.zipf, seed=0)
    made = time.perf_counter() - t
    data = SplitData(
        user_ids=[f"u{i}" for i in range(args.users)],
        track_ids=[f"t{i}" for i in range(args.items)],
        train=Seen(indptr=indptr, indices=indices),
        train_plays=np.ones(len(indices), dtype=np.int64),
        parts={},
    )
    heard = int((np.bincount(indices, minlength=args.items) > 0).sum())
    print(f"matrix: {args.users} users x {args.items} tracks ({heard} heard), {len(indices):,} pairs, "
          f"made in {made:.1f}s; implicit {implicit.__version__}, {args.threads} threads, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    torch.set_num_threads(args.threads)
    print("\n| factors | iterations | threads | fit + build (s) | s / iteration | peak RSS (GB) |")
    print("|---|---|---|---|---|---|")
    for factors in args.factors:
        settings = IALSSettings(factors=factors, iterations=args.iterations, device="cpu")
        t = time.perf_counter()
        model = IALS(data, settings, seed=0, threads=args.threads)
        seconds = time.perf_counter() - t
        assert np.isfinite(model.items.numpy()).all() and np.isfinite(model.users.numpy()).all()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
        print(f"| {factors} | {args.iterations} | {args.threads} | {seconds:.1f} | {seconds / args.iterations:.2f} | {rss:.2f} |")
    if args.content_dims:
        time_content_models(model.items.numpy(), data, args)


def time_content_models(items: np.ndarray, data, args: argparse.Namespace) -> None:
    """Seconds per epoch of content2cf's regression and contrastive's projection (default
    settings, early stopping off, the held-out loss included) onto the factors, per content
    width; contrastive learns from the heard tracks only (an unheard track's factor is zero);
    cmf: one alternating sweep (users, content map, items) with its default settings and the
    factors of the iALS fit."""
    import torch

    from audiorec.models.cmf import CMFSettings
    from audiorec.models.cmf import fit as fit_cmf
    from audiorec.models.content2cf import Content2CFSettings, fit_regression
    from audiorec.models.contrastive import ContrastiveSettings, fit_projection

    torch.set_num_threads(args.content_threads or args.threads)
    rng = np.random.default_rng(1)
    heard = np.linalg.norm(items, axis=1) > 0
    print(f"\ncontent models: {torch.get_num_threads()} torch thread(s)")
    print("\n| model | content dims | hidden | batch | factors | tracks | s / epoch |")
    print("|---|---|---|---|---|---|---|")
    for dim in args.content_dims:
        content = rng.standard_normal((args.items, dim)).astype(np.float32)
        if "content2cf" not in args.skip:
            settings = Content2CFSettings(epochs=args.epochs, patience=args.epochs + 1)
            t = time.perf_counter()
            _, info = fit_regression(content, items, np.ones(args.items), settings, 0, torch.device("cpu"))
            seconds = (time.perf_counter() - t) / info["regression_epochs_run"]
            row = ["content2cf", dim, list(settings.hidden), settings.batch_size, items.shape[1], args.items, f"{seconds:.2f}"]
            print("| " + " | ".join(map(str, row)) + " |")
        if "contrastive" not in args.skip:
            settings = ContrastiveSettings(epochs=args.epochs, patience=args.epochs + 1)
            t = time.perf_counter()
            _, info = fit_projection(content[heard], items[heard], settings, 0, torch.device("cpu"))
            seconds = (time.perf_counter() - t) / info["contrastive_epochs_run"]
            row = ["contrastive", dim, list(settings.hidden), settings.batch_size, items.shape[1], int(heard.sum()), f"{seconds:.2f}"]
            print("| " + " | ".join(map(str, row)) + " |")
        if "cmf" not in args.skip:
            settings = CMFSettings(factors=items.shape[1], iterations=1)
            t = time.perf_counter()
            fit_cmf(data, content, np.zeros(args.items, bool), settings, 0, torch.device("cpu"))
            seconds = time.perf_counter() - t
            row = ["cmf (1 sweep)", dim, "–", "–", items.shape[1], args.items, f"{seconds:.2f}"]
            print("| " + " | ".join(map(str, row)) + " |")


if __name__ == "__main__":
    main()

"""Benchmark of rule split at Music4All-Onion scale: peak RSS and rows/s, .tsv and .tsv.bz2.

Generates (once, cached under --out) a synthetic listening log of --rows rows with
benchmarks/synthetic_log.py, then splits it in a fresh process per case (so each peak
RSS is that case's own) with the default, paper settings, writing the Parquet outputs
like the rule does. Prints a Markdown table; goals (issue 3): peak RSS < 6 GB and
>= 2 M rows/s on uncompressed input on a 2-core machine.

    python benchmarks/split.py --rows 50000000 [--out benchmarks/out] [--no-bz2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))


def worker(log_path: str, history: str) -> None:
    """One measured split (runs in its own process); prints a JSON line."""
    from audiorec.data.split import SplitSettings, split_log, write_split

    t0 = time.perf_counter()
    result = split_log(log_path, SplitSettings(history=history))  # type: ignore[arg-type]
    t_split = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        write_split(result, *(Path(tmp) / n for n in ("train.parquet", "val.parquet", "test.parquet", "stats.csv")))
    t_total = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    stats = {r["name"]: r for r in result.stats.iter_rows(named=True)}
    print(
        json.dumps(
            {
                "rows": stats["log"]["listens"],
                "split_s": t_split,
                "total_s": t_total,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "peak_rss_gb": usage.ru_maxrss * 1024 / 1e9,  # ru_maxrss is in KiB on Linux
                "table2": {
                    p: [stats[p]["users"], stats[p]["items"], stats[p]["interactions"]]
                    for p in ("train", "val", "test")
                },
            }
        )
    )


def measure(log_path: Path, history: str) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", str(log_path), "--history", history],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"benchmark worker failed on {log_path}:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--no-bz2", action="store_true", help="skip the .bz2 case")
    parser.add_argument("--history", choices=["all", "train_window"], default="all")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.history)
        return

    from synthetic_log import write_log

    args.out.mkdir(parents=True, exist_ok=True)
    cases = [("tsv", False)] + ([] if args.no_bz2 else [("tsv.bz2", True)])
    rows = []
    for suffix, compress in cases:
        path = args.out / f"log_{args.rows}.{suffix}"
        if not path.exists():
            t0 = time.perf_counter()
            write_log(path, args.rows, compress=compress)
            print(f"generated {path} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        m = measure(path, args.history)
        m["input"] = f"`.{suffix}` ({path.stat().st_size / 1e9:.2f} GB)"
        rows.append(m)
        print(json.dumps(m), file=sys.stderr)

    load = os.getloadavg()
    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores; load average after the run {load[0]:.1f}")
    print(f"history: {args.history}; rows/s = rows read / wall time of the split (read + aggregate + parts)\n")
    print(
        "| input | rows | split wall s | rows/s (wall) | + write s | CPU s (all threads) | rows per CPU s "
        "| peak RSS GB | train users / items / pairs |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for m in rows:
        t2 = m["table2"]["train"]
        print(
            f"| {m['input']} | {m['rows']:,} | {m['split_s']:.1f} | {m['rows'] / m['split_s'] / 1e6:.2f} M "
            f"| {m['total_s'] - m['split_s']:.1f} | {m['cpu_s']:.0f} | {m['rows'] / m['cpu_s'] / 1e6:.2f} M "
            f"| {m['peak_rss_gb']:.2f} | {t2[0]:,} / {t2[1]:,} / {t2[2]:,} |"
        )


if __name__ == "__main__":
    main()

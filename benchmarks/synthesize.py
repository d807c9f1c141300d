"""Time the synthetic dataset generator (rule synthesize's work) and describe what it made.

    python benchmarks/synthesize.py                      # the default dataset, all cores
    python benchmarks/synthesize.py --threads 1 --set n_tracks=200
    python benchmarks/synthesize.py --no-audio --set n_tracks=56000 n_users=17000 events_per_user=300

Prints a Markdown table: wall time per phase, CPU seconds per clip, the size of the
result, and the paper's split of its log (train = 12 months before 2020-02-20; held-out =
pairs new to the user from 2020-02-20 on, users and tracks present in train; val and
test each get about half of the held-out users).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from audiorec.data.synthetic import SyntheticSettings, generate_dataset  # noqa: E402


def paper_split(folder: Path) -> dict[str, int]:
    import polars as pl

    log = pl.read_csv(folder / "userid_trackid_timestamp.tsv", separator="\t", try_parse_dates=True)
    start, train_from = dt.datetime(2020, 2, 20), dt.datetime(2019, 2, 20)
    train = log.filter((pl.col("timestamp") >= train_from) & (pl.col("timestamp") < start))
    seen = log.filter(pl.col("timestamp") < start).select("user_id", "track_id").unique()
    held = (
        log.filter(pl.col("timestamp") >= start)
        .join(seen, on=["user_id", "track_id"], how="anti")
        .filter(pl.col("user_id").is_in(train["user_id"].unique().implode()))
        .filter(pl.col("track_id").is_in(train["track_id"].unique().implode()))
        .select("user_id", "track_id")
        .unique()
    )
    pairs = log.select("user_id", "track_id").unique().height
    return {
        "events": log.height,
        "repeat share %": round(100 * (1 - pairs / log.height)),
        "train users": train["user_id"].n_unique(),
        "train tracks": train["track_id"].n_unique(),
        "train (user, track) pairs": train.select("user_id", "track_id").unique().height,
        "held-out users (val + test)": held["user_id"].n_unique(),
        "held-out tracks": held["track_id"].n_unique(),
        "held-out pairs (val + test)": held.height,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--set", nargs="*", default=[], metavar="KNOB=VALUE", help="generator knobs (YAML values)")
    parser.add_argument("--no-audio", action="store_true", help="tables and log only")
    parser.add_argument("--out", type=Path, help="keep the dataset here (default: a temporary folder, removed)")
    args = parser.parse_args()
    knobs = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.set)}
    settings = SyntheticSettings.from_mapping(knobs)
    out = args.out or Path(tempfile.mkdtemp(prefix="synth-bench-"))
    try:
        cpu0 = time.process_time()
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        summary = generate_dataset(settings, out, threads=args.threads, audio=not args.no_audio)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = time.process_time() - cpu0 + (children.ru_utime - children0.ru_utime) + (children.ru_stime - children0.ru_stime)
        split = paper_split(out)
        audio_bytes = sum(p.stat().st_size for p in (out / "audios").iterdir()) if not args.no_audio else 0
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)

    print(f"Machine: {platform.node()} ({os.cpu_count()} cores), Python {platform.python_version()}, "
          f"{dt.date.today()}; threads={args.threads}; knobs: {knobs or 'defaults'}\n")
    print("| phase | wall s |\n|---|---|")
    for phase, seconds in summary.phases.items():
        print(f"| {phase} | {seconds:.1f} |")
    print(f"| **total** | **{summary.seconds:.1f}** |")
    print(f"\nCPU time (all processes): {cpu:.1f} s", end="")
    if not args.no_audio:
        print(f"; audio {audio_bytes / 2**20:.0f} MiB for {summary.n_tracks} clips of {settings.clip_seconds:g} s "
              f"({settings.audio_format})", end="")
    print("\n\n| dataset | value |\n|---|---|")
    print(f"| tracks (listened) | {summary.n_tracks} ({summary.n_tracks_listened}) |")
    print(f"| users (with events) | {summary.n_users} ({summary.n_users_with_events}) |")
    for key, value in split.items():
        print(f"| {key} | {value} |")


if __name__ == "__main__":
    main()

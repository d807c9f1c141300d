"""Extraction throughput of any backend type: tracks per second and real-time factor.

Generates music-like clips (44.1 kHz stereo mp3 by default, like Music4All's 30 s clips),
indexes them as rule `tracks` does, then runs the extraction engine over them exactly as
an `embed_shard` job would (decode workers, resampling, windowing, batching), timing
decode alone and decode + model. Model loading is timed separately and not counted.

    PYTHONPATH=src python benchmarks/extract.py --backend mfcc --seconds 10 30 --tracks 40
    PYTHONPATH=src python benchmarks/extract.py --spec '{"type": "musicnn", "variant": "MSD_musicnn"}'

Real-time factor (RTF) = processing time / audio duration (lower is better);
"x real time" is its inverse.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from audiorec.backends import build_backend  # noqa: E402
from audiorec.extraction.decoding import DecodePool  # noqa: E402
from audiorec.extraction.device import plan_run  # noqa: E402
from audiorec.extraction.engine import Extractor  # noqa: E402
from audiorec.extraction.shards import shard_inputs  # noqa: E402
from audiorec.extraction.tracks import build_track_index  # noqa: E402


def music_like(seconds: float, rate: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    notes = sum(
        np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) * a
        for f, a in zip(rng.uniform(60, 3000, 6), rng.uniform(0.03, 0.12, 6), strict=True)
    )
    beat = (np.sin(2 * np.pi * rng.uniform(1, 3) * t) > 0.95) * rng.standard_normal(t.size) * 0.2
    left = notes + beat + 0.01 * rng.standard_normal(t.size)
    return np.stack([left, 0.8 * left + 0.01 * rng.standard_normal(t.size)], axis=1).astype(np.float32)


def make_clips(folder: Path, n: int, seconds: float, fmt: str, rate: int = 44100) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        sf.write(folder / f"clip{i:05d}.{fmt}", music_like(seconds, rate, i), rate)


def measure(spec: dict, audios: Path, threads: int, workers: int | None, repeats: int) -> dict:
    backend = build_backend(spec)
    t0 = time.perf_counter()
    index = build_track_index(audios, workers=threads)
    probe_s = time.perf_counter() - t0
    refs, _ = shard_inputs(index, 0, 1, backend.needs_audio)
    audio_s = float(index["duration"].sum())
    plan = plan_run(threads, spec.get("device", "auto"), spec.get("precision", "auto"), workers)
    with DecodePool(plan.num_workers) as pool:
        t0 = time.perf_counter()
        for _ in pool.decode(refs, backend.sample_rate):
            pass
        decode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    best = float("inf")
    with Extractor(backend, plan, batch_size=int(spec.get("batch_size", 8))) as ex:
        load_s = time.perf_counter() - t0
        for _ in range(repeats):
            t0 = time.perf_counter()
            result = ex.run(refs)
            best = min(best, time.perf_counter() - t0)
    assert not result.failures, result.failures[:3]
    return {
        "tracks": len(refs),
        "audio_s": audio_s,
        "load_s": load_s,
        "decode_s": decode_s,
        "probe_s": probe_s,
        "total_s": best,
        "plan": plan.describe(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def probe_rate(clips: Path, n: int, threads: int) -> float:
    """Files per second of rule tracks' probe over n hard links to the generated clips
    (headers come from the page cache: an upper bound for a cold disk)."""
    links = clips.parent / "links"
    links.mkdir()
    sources = sorted(clips.iterdir())
    for i in range(n):
        src = sources[i % len(sources)]
        os.link(src, links / f"l{i:06d}{src.suffix}")
    t0 = time.perf_counter()
    build_track_index(links, workers=threads)
    return n / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", default="mfcc", help="backend type (ignored when --spec is given)")
    p.add_argument("--spec", help='backend spec as JSON, e.g. \'{"type": "musicnn"}\'')
    p.add_argument("--seconds", type=float, nargs="+", default=[10.0, 30.0])
    p.add_argument("--tracks", type=int, default=32)
    p.add_argument("--format", default="mp3", choices=["mp3", "wav", "flac", "ogg"])
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--workers", type=int, default=None, help="decode workers (default: the engine's choice)")
    p.add_argument("--repeats", type=int, default=2, help="timed passes; the best is reported")
    p.add_argument("--probe-files", type=int, default=0, help="also time the probe over this many files")
    p.add_argument("--out", type=Path, help="also write the rows as JSON here")
    args = p.parse_args()
    spec = json.loads(args.spec) if args.spec else {"type": args.backend}

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seconds in args.seconds:
            audios = Path(tmp) / f"s{seconds:g}"
            make_clips(audios, args.tracks, seconds, args.format)
            r = measure(spec, audios, args.threads, args.workers, args.repeats)
            r.update(seconds=seconds, backend=spec["type"])
            rows.append(r)
        probed = probe_rate(audios, args.probe_files, args.threads) if args.probe_files else None

    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; threads {args.threads}")
    print(f"spec: {json.dumps(spec)}; clips: {args.format}, 44.1 kHz stereo\n")
    print(
        "| backend | clip | tracks | run plan | probe (files/s) | decode only (tracks/s) "
        "| tracks/s | x real time | RTF | load (s) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        speed = r["audio_s"] / r["total_s"]
        print(
            f"| {r['backend']} | {r['seconds']:g} s | {r['tracks']} | {r['plan']} | {r['tracks'] / r['probe_s']:.0f} "
            f"| {r['tracks'] / r['decode_s']:.1f} "
            f"| {r['tracks'] / r['total_s']:.1f} | {speed:.0f} | {1 / speed:.4f} | {r['load_s']:.1f} |"
        )
    if probed is not None:
        print(f"\nprobe (rule tracks): {probed:.0f} files/s over {args.probe_files} {args.format} files")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

"""MusiCNN throughput: audiorec's port vs the original musicnn extractor, and the fraction of
this machine's measured matmul/convolution peak that the port's forward pass reaches.

    PYTHONPATH=src python benchmarks/musicnn.py --clips 16 --threads 2 \\
        --original-python /work/venvs/musicnn-tf/bin/python

* Clips: `--clips` synthetic 30 s, 44.1 kHz mp3 files (Music4All's format) written once to
  `--audio-dir` (benchmarks/musicnn_audio.py).
* Port, end to end: decode (soundfile) + mono + resample to 16 kHz (soxr, as librosa.load
  does) + mel + network, `--batch` clips per forward call; also the network part alone.
* Original: `musicnn.extractor.extractor(file, model=..., extract_features=True)` one file at
  a time, as its README shows, in the TensorFlow venv given by `--original-python` (the
  wheel installed there with `--no-deps`; see docs/musicnn.md). The first call (TensorFlow and
  numba start-up) is timed separately and left out of the rate.
* Peak: the best of a large fp32 matmul and a large 3x3 convolution in torch, with the same
  threads. MusiCNN's useful FLOPs are counted from its layer shapes (2 x multiply-adds of
  every convolution and dense layer); torch's FlopCounterMode gives the executed count
  (the banded temporal GEMM also multiplies structural zeros).

The machine may be shared: every rate is the median of `--repeats` runs, and the load
average is printed so that a busy machine shows. On a busy machine run it with
OMP_WAIT_POLICY=PASSIVE: torch's OpenMP threads otherwise spin waiting for each other while
the OS has descheduled them, which cost 2-4x here (TensorFlow uses its own thread pool).
Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))

SR = 16000

ORIGINAL_RUNNER = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
t0 = time.perf_counter()
from musicnn.extractor import extractor
files, variant = json.loads(sys.argv[1]), sys.argv[2]
import_s = time.perf_counter() - t0
times, cpu = [], []
for f in files:
    t, c = time.perf_counter(), time.process_time()
    taggram, tags, features = extractor(f, model=variant, extract_features=True)
    times.append(time.perf_counter() - t)
    cpu.append(time.process_time() - c)
print(json.dumps({"import_s": import_s, "times": times, "cpu": cpu}))
"""


def decode(path: Path) -> np.ndarray:
    import soundfile as sf
    import soxr

    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    return soxr.resample(audio.mean(axis=1), sr, SR, quality="HQ").astype(np.float32)


def useful_flops_per_patch() -> int:
    """2 x multiply-adds of every convolution and dense layer of one 187 x 96 patch."""
    from audiorec.backends.musicnn_net import PATCH_FRAMES, MusiCNNConfig

    cfg, t = MusiCNNConfig(), PATCH_FRAMES
    macs = sum(t * (cfg.n_mels - w + 1) * cfg.timbral_filters * 7 * w for w in cfg.timbral_widths)
    macs += sum(t * cfg.n_mels * cfg.temporal_filters * k for k in cfg.temporal_lengths)
    macs += t * cfg.midend_filters * 7 * (cfg.frontend_dim + 2 * cfg.midend_filters)
    macs += 2 * cfg.pool_dim * cfg.backend_units + cfg.backend_units * cfg.n_classes
    return 2 * macs


def executed_flops_per_patch(model) -> int:  # noqa: ANN001
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(torch.zeros(1, 187, 96))
    return int(counter.get_total_flops())


def best_rate(fn, flops: float, repeats: int) -> tuple[float, float]:  # noqa: ANN001
    """(GFLOP/s by wall clock, GFLOP/s per CPU-second) of the fastest of `repeats` calls.

    CPU time is the robust one on a shared machine: it does not count the time the OS
    gives to other processes (with one thread it is the work itself)."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return flops / min(walls) / 1e9, flops / max(min(cpus), 1e-9) / 1e9


def measure_peak(repeats: int) -> dict[str, tuple[float, float]]:
    """Large fp32 GEMMs (MKL) and a large 3x3 convolution (oneDNN) in torch."""
    import torch
    import torch.nn.functional as F

    out = {}
    with torch.inference_mode():
        for n in (2048, 4096):
            a, b = torch.randn(n, n), torch.randn(n, n)
            out[f"matmul {n}^2"] = best_rate(lambda a=a, b=b: a @ b, 2 * n**3, repeats)
        x, w = torch.randn(16, 64, 128, 128), torch.randn(128, 64, 3, 3)
        out["conv 3x3 64->128"] = best_rate(lambda: F.conv2d(x, w, padding=1), 2 * 16 * 128**2 * 128 * 64 * 9, repeats)
        x, w = torch.randn(32, 256, 32, 32), torch.randn(256, 256, 3, 3)
        out["conv 3x3 256->256"] = best_rate(lambda: F.conv2d(x, w, padding=1), 2 * 32 * 32**2 * 256 * 256 * 9, repeats)
    return out


def bench_port(paths: list[Path], variant: str, weights_dir: str | None, batch: int, repeats: int) -> dict[str, float]:
    import torch

    from audiorec.backends.musicnn import MusiCNNBackend

    spec = {"type": "musicnn", "variant": variant}
    if weights_dir:
        spec["weights_dir"] = weights_dir
    backend = MusiCNNBackend(spec)
    backend.load("cpu")

    def run_end_to_end() -> tuple[float, float]:
        t, c = time.perf_counter(), time.process_time()
        for start in range(0, len(paths), batch):
            waves = [decode(p) for p in paths[start : start + batch]]
            lengths = [len(w) for w in waves]
            padded = np.zeros((len(waves), max(lengths)), np.float32)
            for i, w in enumerate(waves):
                padded[i, : len(w)] = w
            backend.embed_batch(padded, lengths)
        return time.perf_counter() - t, time.process_time() - c

    decoded = [decode(p) for p in paths]
    durations = [len(w) / SR for w in decoded]

    def run_model_only() -> tuple[float, float, int]:
        t, c = time.perf_counter(), time.process_time()
        n_patches = 0
        for start in range(0, len(decoded), batch):
            waves = decoded[start : start + batch]
            lengths = [len(w) for w in waves]
            padded = np.zeros((len(waves), max(lengths)), np.float32)
            for i, w in enumerate(waves):
                padded[i, : len(w)] = w
            n_patches += int(backend.embed_batch(padded, lengths).frames.sum())
        return time.perf_counter() - t, time.process_time() - c, n_patches

    def run_network_only() -> None:
        x = torch.rand(64, 187, 96) * 3
        assert backend.model is not None
        with torch.inference_mode():
            for s in range(0, 64, backend.patch_batch):
                backend.model(x[s : s + backend.patch_batch])

    run_end_to_end()  # warm-up (allocator, oneDNN kernels)
    e2e_runs = [run_end_to_end() for _ in range(repeats)]
    model_runs = [run_model_only() for _ in range(repeats)]
    network = best_rate(run_network_only, 64 * useful_flops_per_patch(), repeats)
    assert backend.model is not None
    return {
        "tracks": len(paths),
        "audio_s": sum(durations),
        "end_to_end_s": statistics.median(r[0] for r in e2e_runs),
        "end_to_end_cpu_s": statistics.median(r[1] for r in e2e_runs),
        "mel_and_network_s": statistics.median(r[0] for r in model_runs),
        "mel_and_network_cpu_s": statistics.median(r[1] for r in model_runs),
        "patches": model_runs[0][2],
        "network_gflops": network,
        "patch_batch": backend.patch_batch,
        "executed_flops_per_patch": executed_flops_per_patch(backend.model),
    }


def bench_original(python: str, paths: list[Path], variant: str, threads: int) -> dict[str, float]:
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": str(threads), "TF_NUM_INTRAOP_THREADS": str(threads), "TF_NUM_INTEROP_THREADS": "1"})
    files = json.dumps([str(p) for p in paths])
    out = subprocess.run(
        [python, "-c", ORIGINAL_RUNNER, files, variant], capture_output=True, text=True, env=env, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"original extractor failed:\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    times = result["times"]
    return {"first_call_s": times[0], "import_s": result["import_s"], "times": times[1:], "cpu": result["cpu"][1:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=16)
    parser.add_argument("--audio-dir", type=Path, default=HERE / "out" / "musicnn_clips")
    parser.add_argument("--variant", default="MSD_musicnn")
    parser.add_argument("--weights-dir", default=None, help="musicnn weights cache (default: the backend's)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch", type=int, default=8, help="clips per embed_batch call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--original-python", default=None, help="python of a venv with TensorFlow + musicnn (no-deps)")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw numbers here")
    args = parser.parse_args(argv)

    import torch

    from musicnn_audio import write_clips

    torch.set_num_threads(args.threads)
    paths = write_clips(args.audio_dir, args.clips)
    load_before = os.getloadavg()
    peak_runs = [measure_peak(args.repeats)]
    port = bench_port(paths, args.variant, args.weights_dir, args.batch, args.repeats)
    peak_runs.append(measure_peak(args.repeats))
    peak = {k: (max(r[k][0] for r in peak_runs), max(r[k][1] for r in peak_runs)) for k in peak_runs[0]}
    original = bench_original(args.original_python, paths, args.variant, args.threads) if args.original_python else None
    load_after = os.getloadavg()

    n, audio = port["tracks"], port["audio_s"]
    peak_wall = max(v[0] for v in peak.values())
    peak_cpu = max(v[1] for v in peak.values())
    useful = useful_flops_per_patch()
    net_wall, net_cpu = port["network_gflops"]
    pipe_wall = useful * port["patches"] / port["mel_and_network_s"] / 1e9
    pipe_cpu = useful * port["patches"] / port["mel_and_network_cpu_s"] / 1e9
    print(f"### MusiCNN ({args.variant}) on {platform.processor() or platform.machine()}, {args.threads} threads\n")
    print(f"{n} clips of {audio / n:.1f} s; load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} "
          f"on {os.cpu_count()} cores; medians of {args.repeats} runs; torch {torch.__version__}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}.\n")
    print("| pipeline | tracks/s (wall) | real-time factor | x real time | tracks per CPU-second |")
    print("|---|---|---|---|---|")
    rows = [
        (f"port, end to end (decode + resample + mel + net, batch {args.batch})", n / port["end_to_end_s"],
         n / port["end_to_end_cpu_s"]),
        ("port, mel + network on decoded 16 kHz audio", n / port["mel_and_network_s"], n / port["mel_and_network_cpu_s"]),
    ]
    if original:
        t, c = original["times"], original["cpu"]
        rows.append(("original extractor, one file at a time (README)", len(t) / sum(t), len(c) / sum(c)))
    for name, rate, cpu_rate in rows:
        print(f"| {name} | {rate:.2f} | {(1 / rate) / (audio / n):.4f} | {rate * audio / n:.0f} | {cpu_rate:.2f} |")
    if original:
        speedup = rows[0][1] / rows[-1][1]
        cpu_speedup = rows[0][2] / rows[-1][2]
        print(f"\nEnd-to-end speed-up over the original: **{speedup:.1f}x** by wall clock, {cpu_speedup:.1f}x by CPU time "
              f"(goal: 3x). The original's first call took {original['first_call_s']:.1f} s (TensorFlow/numba start-up, "
              "not counted); it rebuilds its graph and restores the checkpoint for every file, as its README usage does.")
    print("\n| compute | by wall clock | per CPU-second |\n|---|---|---|")
    print(f"| useful FLOPs per 3 s patch (executed, FlopCounterMode) | {useful / 1e9:.3f} GFLOP "
          f"({port['executed_flops_per_patch'] / 1e9:.3f}) | |")
    print(f"| network, patch_batch {port['patch_batch']} (GFLOP/s useful) | {net_wall:.1f} | {net_cpu:.1f} |")
    print(f"| mel + network over the clips (GFLOP/s useful) | {pipe_wall:.1f} | {pipe_cpu:.1f} |")
    for name, (wall, cpu) in peak.items():
        print(f"| peak candidate: {name} (GFLOP/s) | {wall:.1f} | {cpu:.1f} |")
    print(f"| **fraction of measured peak**: network / mel + network | {net_wall / peak_wall:.0%} / {pipe_wall / peak_wall:.0%} "
          f"| {net_cpu / peak_cpu:.0%} / {pipe_cpu / peak_cpu:.0%} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"port": port, "peak": peak, "original": original,
                                         "load": [load_before, load_after]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

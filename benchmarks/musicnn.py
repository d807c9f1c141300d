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
average is printed so that a busy machine shows. Prints a Markdown table.
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


def measure_peak(repeats: int) -> dict[str, float]:
    import torch
    import torch.nn.functional as F

    def best(fn, flops: float) -> float:  # noqa: ANN001
        fn()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return flops / min(times) / 1e9

    n = 4096
    a, b = torch.randn(n, n), torch.randn(n, n)
    x, w = torch.randn(16, 64, 128, 128), torch.randn(128, 64, 3, 3)
    with torch.inference_mode():
        mm = best(lambda: a @ b, 2 * n**3)
        conv = best(lambda: F.conv2d(x, w, padding=1), 2 * 16 * 128 * 128 * 128 * 64 * 9)
    return {"matmul_gflops": mm, "conv_gflops": conv}


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

    def run_network_only() -> float:
        x = torch.rand(64, 187, 96) * 3
        assert backend.model is not None
        t = time.perf_counter()
        with torch.inference_mode():
            for s in range(0, 64, backend.patch_batch):
                backend.model(x[s : s + backend.patch_batch])
        return (time.perf_counter() - t) / 64

    run_end_to_end()  # warm-up (allocator, oneDNN kernels)
    e2e_runs = [run_end_to_end() for _ in range(repeats)]
    model_runs = [run_model_only() for _ in range(repeats)]
    per_patch = statistics.median(run_network_only() for _ in range(repeats))
    assert backend.model is not None
    return {
        "tracks": len(paths),
        "audio_s": sum(durations),
        "end_to_end_s": statistics.median(r[0] for r in e2e_runs),
        "end_to_end_cpu_s": statistics.median(r[1] for r in e2e_runs),
        "mel_and_network_s": statistics.median(r[0] for r in model_runs),
        "mel_and_network_cpu_s": statistics.median(r[1] for r in model_runs),
        "patches": model_runs[0][2],
        "network_s_per_patch": per_patch,
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
    port = bench_port(paths, args.variant, args.weights_dir, args.batch, args.repeats)
    peak = measure_peak(args.repeats)
    original = bench_original(args.original_python, paths, args.variant, args.threads) if args.original_python else None
    load_after = os.getloadavg()

    n, audio = port["tracks"], port["audio_s"]
    peak_gflops = max(peak.values())
    useful = useful_flops_per_patch()
    net_gflops = useful / port["network_s_per_patch"] / 1e9
    pipe_gflops = useful * port["patches"] / port["mel_and_network_s"] / 1e9
    print(f"### MusiCNN ({args.variant}) on {platform.processor() or platform.machine()}, {args.threads} threads\n")
    print(f"{n} clips of {audio / n:.1f} s; load average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} "
          f"on {os.cpu_count()} cores; medians of {args.repeats} runs.\n")
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
    print("\n| compute | value |\n|---|---|")
    print(f"| useful FLOPs per 3 s patch | {useful / 1e9:.3f} GFLOP |")
    print(f"| executed FLOPs per patch (FlopCounterMode) | {port['executed_flops_per_patch'] / 1e9:.3f} GFLOP |")
    print(f"| network time per patch (patch_batch {port['patch_batch']}) | {port['network_s_per_patch'] * 1e3:.1f} ms |")
    print(f"| network throughput | {net_gflops:.1f} GFLOP/s useful |")
    print(f"| mel + network throughput | {pipe_gflops:.1f} GFLOP/s useful |")
    print(f"| measured peak: fp32 matmul 4096^2 / conv 3x3 64->128 | {peak['matmul_gflops']:.1f} / {peak['conv_gflops']:.1f} GFLOP/s |")
    print(f"| fraction of peak, network / mel + network | {net_gflops / peak_gflops:.0%} / {pipe_gflops / peak_gflops:.0%} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"port": port, "peak": peak, "original": original,
                                         "load": [load_before, load_after]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Extraction throughput of every network backend at full size, with random weights, on the best
device present (CUDA, else CPU), in batches: clips/s, the time 56,000 30 s clips
(Music4All-Onion) would take, and the share of the device's FLOP-bound rate reached.

    PYTHONPATH=src python benchmarks/gpu_extract.py                          # all, on the best device
    PYTHONPATH=src python benchmarks/gpu_extract.py --only muq-large,mule-f0 --clips 4 --batch 2
    PYTHONPATH=src python benchmarks/gpu_extract.py --device cpu --only mert-95M --clips 2 --batch 1 --repeats 1

The models are benchmarks/backends.py's builders (same architecture and cost as the published
checkpoints, offline). Each backend's `embed_batch` runs as the engine calls it: `--batch` clips
of 30 s, cut into the backend's windows, padded into one batch, under the backend's precision
(bf16 autocast on CUDA GPUs that support it, else fp16; fp32 on CPU). Decoding and resampling
are not included (the engine overlaps them with the model in worker processes).

"FLOP-bound rate": FLOPs per clip (torch.utils.flop_counter: matmuls and convolutions) over the
device's *measured* dense matmul rate at the same precision (a large square matmul), so the
share says how far each model is from being purely matmul-bound on this device; a datasheet
peak can be given with --peak-tflops to print the share of that too. Jukebox (its own env,
OpenAI's code) and MusiCNN (milliseconds per clip) are not included.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from backends import CLIP_SECONDS, MODELS  # noqa: E402

#: the full-size models (benchmarks/backends.py names), one per published checkpoint
FULL_SIZE = ["mert-95M", "mert-330M", "music2vec-v1", "musicfm-330M", "encodecmae-base",
             "clap-larger", "muq-large", "muq_mulan-large", "mule-f0"]
ONION_CLIPS = 56_000


def best_device(requested: str | None) -> Any:
    import torch

    if requested:
        return torch.device(requested)
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def device_precision(device: Any) -> str:
    import torch

    if device.type != "cuda":
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def matmul_tflops(device: Any, precision: str, n: int = 4096, repeats: int = 5) -> float:
    """Achieved dense matmul rate (TFLOP/s) at the backends' precision: the FLOP-bound reference."""
    import torch

    from audiorec.backends.hf_common import PRECISIONS

    dtype = PRECISIONS[precision]
    if device.type == "cpu":
        n = 1024  # keeps the reference quick on a laptop-class CPU
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e12


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batch_of_clips(backend: Any, clips: int) -> tuple[Any, Any]:
    """`clips` 30 s clips cut into the backend's windows, as one zero-padded batch."""
    import torch

    rate = backend.sample_rate
    n = int(CLIP_SECONDS * rate)
    win = int((backend.window_seconds or CLIP_SECONDS) * rate)
    lengths = [min(win, n - s) for s in range(0, n, win)] * clips
    gen = torch.Generator().manual_seed(0)
    waves = 0.1 * torch.randn(len(lengths), max(lengths), generator=gen)
    for i, length in enumerate(lengths):
        waves[i, length:] = 0
    return waves, torch.tensor(lengths)


def measure(name: str, device: Any, clips: int, repeats: int) -> dict[str, Any]:
    import torch
    from torch.nn.utils import parametrize
    from torch.utils.flop_counter import FlopCounterMode

    backend, model = MODELS[name]()
    for module in model.modules():  # fold weight norm: FlopCounterMode cannot see through parametrizations
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    precision = device_precision(device)
    backend.model = model.to(device).eval()
    backend.device, backend.precision = device, precision
    params = sum(p.numel() for p in model.parameters())
    one, one_len = batch_of_clips(backend, 1)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        backend.embed_batch(one, one_len)
    flops_per_clip = counter.get_total_flops()
    waves, lengths = batch_of_clips(backend, clips)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode():
        backend.embed_batch(waves, lengths)  # warm-up (kernels, caches)
        _sync(device)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            backend.embed_batch(waves, lengths)
            _sync(device)
            times.append(time.perf_counter() - start)
    seconds = min(times)
    row = {
        "model": name,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": precision,
        "params_M": params / 1e6,
        "batch_clips": clips,
        "windows": int(waves.shape[0]),
        "gflops_per_clip": flops_per_clip / 1e9,
        "clips_per_s": clips / seconds,
        "onion_hours": ONION_CLIPS / (clips / seconds) / 3600,
        "achieved_tflops": flops_per_clip * clips / seconds / 1e12,
    }
    if device.type == "cuda":
        row["peak_mem_GB"] = torch.cuda.max_memory_allocated(device) / 2**30
    return row


def table(rows: list[dict[str, Any]], matmul: float, peak: float | None) -> str:
    head = ("| model | device | precision | batch (clips) | GFLOP / clip | clips/s | 56k clips (h) "
            f"| share of matmul rate ({matmul:.2g} TFLOP/s) |" + (f" share of {peak:g} TFLOP/s peak |" if peak else ""))
    lines = [head, "|" + "---|" * (8 + bool(peak))]
    for r in rows:
        line = (f"| {r['model']} | {r['device']} | {r['precision']} | {r['batch_clips']} | {r['gflops_per_clip']:.3g} | "
                f"{r['clips_per_s']:.3g} | {r['onion_hours']:.3g} | {r['achieved_tflops'] / matmul:.0%} |")
        if peak:
            line += f" {r['achieved_tflops'] / peak:.0%} |"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(FULL_SIZE), help="comma-separated subset of benchmarks/backends.py's models")
    parser.add_argument("--device", default=None, help="cuda, cuda:1 or cpu (default: CUDA when present)")
    parser.add_argument("--clips", type=int, default=16, help="30 s clips per batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's datasheet peak at the precision used")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    import torch

    torch.manual_seed(0)
    device = best_device(args.device)
    matmul = matmul_tflops(device, device_precision(device))
    rows = []
    for name in args.only.split(","):
        rows.append(measure(name, device, args.clips, args.repeats))
        print(json.dumps(rows[-1]), file=sys.stderr)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(f"device: {rows[0]['device'] if rows else device}, {torch.get_num_threads()} CPU threads; "
          f"measured dense matmul rate {matmul:.3g} TFLOP/s ({device_precision(device)})\n")
    print(table(rows, matmul, args.peak_tflops))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"matmul_tflops": matmul, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

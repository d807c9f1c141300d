"""Where and in which precision a backend runs, and how the job's CPU threads are split.

`device: auto` takes CUDA when present; `precision: auto` is bf16 on GPUs that support it,
fp16 on older ones, fp32 on CPU (CPU half precision is rarely faster and costs accuracy).
Threads: a CPU job splits its cores between the decode workers and the model's intra-op
threads; a GPU job gives decode workers every core but one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..backends.base import BackendError

PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class RunPlan:
    device: Any  # torch.device
    precision: str
    num_workers: int
    torch_threads: int

    def describe(self) -> str:
        return (
            f"device {self.device}, precision {self.precision}, {self.num_workers} decode workers, "
            f"{self.torch_threads} model threads"
        )


def resolve_device(device: str = "auto") -> Any:
    import torch

    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise BackendError(
                f"device {device!r} was requested but CUDA is not available here; set the backend's "
                "`device:` to auto or cpu, or run the job on a GPU node."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise BackendError(f"device {device!r}: only {torch.cuda.device_count()} CUDA devices are visible.")
    elif dev.type != "cpu":
        raise BackendError(f"device {device!r} is not supported; use auto, cpu, cuda or cuda:N.")
    return dev


def resolve_precision(precision: str, device: Any) -> str:
    import torch

    if precision in (None, "auto"):
        if device.type != "cuda":
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision not in PRECISIONS:
        raise BackendError(f"precision {precision!r} is not one of auto, {', '.join(PRECISIONS)}.")
    return precision


def plan_run(threads: int, device: str = "auto", precision: str = "auto", num_workers: int | None = None) -> RunPlan:
    """Resolve the backend's run settings for a job granted `threads` cores."""
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    threads = max(1, int(threads))
    if num_workers is None:
        if threads == 1:
            num_workers = 0
        elif dev.type == "cuda":
            num_workers = min(threads - 1, 8)
        else:
            num_workers = max(1, threads // 2)
    torch_threads = threads if dev.type == "cuda" else max(1, threads - num_workers)
    return RunPlan(dev, prec, int(num_workers), torch_threads)


def torch_dtype(precision: str) -> Any:
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


@contextlib.contextmanager
def autocast(device: Any, precision: str) -> Iterator[None]:
    """Mixed precision for the forward pass (a no-op in fp32); backends that must stay in
    fp32 for part of their computation (spectrograms) disable it locally."""
    import torch

    if precision == "fp32":
        yield
        return
    with torch.autocast(device_type=device.type, dtype=torch_dtype(precision)):
        yield

"""Process set-up shared by the workflow scripts: logging to the rule's log, seeding, threads."""

from __future__ import annotations

import logging
import os
import random
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(log_path: str | os.PathLike[str] | None, level: int = logging.INFO) -> logging.Logger:
    """Send logging, warnings and stderr (tqdm's progress bars) to the rule's log file.

    Snakemake shows a failed job's log; routing stderr there too means tracebacks and
    progress bars end up where the user looks first.
    """
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(level)
    if log_path is not None:
        path = Path(log_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        stream = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives for the process
        sys.stderr = stream
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    logging.captureWarnings(True)
    return logging.getLogger("audiorec")


def progress(iterable: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it") -> Iterable[T]:
    """A tqdm progress bar that stays readable in a log file (updates at most every 10 s off a TTY)."""
    from tqdm.auto import tqdm

    interactive = sys.stderr.isatty()
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        mininterval=0.1 if interactive else 10.0,
        dynamic_ncols=interactive,
        ascii=not interactive,
    )


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch so that the same config gives the same numbers on CPU."""
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    import numpy as np

    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def set_threads(n: int) -> None:
    """Use the threads Snakemake granted the job, not every core of the node."""
    n = max(1, int(n))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_MAX_THREADS"):
        os.environ.setdefault(var, str(n))
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(n)

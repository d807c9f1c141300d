"""iALS: implicit-feedback alternating least squares (Hu, Koren & Volinsky 2008), the
collaborative baseline that content models are measured against, from the `implicit`
library rather than written here.

Why a library: iALS is a well-tuned, well-tested conjugate-gradient solver with a CUDA build;
a hand-written one would be slower and its bugs would read as "collaborative filtering is
weak". The model is the factors `implicit` returns, ranked by the same `Factors.rank` as
every other model (dot product; known pairs and candidates handled there).

Two choices are ours and documented (docs/models.md, "iALS"):
- the confidence of a listened pair is `alpha * value` with value 1 (`binary`), the play
  count (`plays`) or 1 + log(plays) (`log_plays`): implicit's convention, c = alpha·r, where
  Hu et al. write 1 + alpha·r;
- a track with no train listen (a cold track of `cold_items`, a track first heard in val/test)
  gets a zero factor: the solver would leave it at the remains of its random start, a
  ranking by noise. Zero makes every such track tie (ties go to the lower track id), as with
  `pop`: iALS is a floor of the cold-start report, not a content model.

The user and item factors are `model.pt`'s state (`user_factors`, `item_factors`, indexed
by its `user_ids`/`track_ids`), so later jobs (content2cf) read them instead of refitting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from scipy import sparse

from .base import Factors, Recommender
from .data import SplitData

if TYPE_CHECKING:
    from .registry import RunContext

INTERACTIONS = ("binary", "plays", "log_plays")


@dataclass(frozen=True)
class IALSSettings:
    factors: int = 64
    regularization: float = 0.01
    alpha: float = 10.0
    iterations: int = 15
    interactions: str = "binary"
    device: str = "auto"

    @classmethod
    def from_config(cls, spec: dict[str, Any]) -> IALSSettings:
        names = cls.__dataclass_fields__
        settings = cls(**{key: spec[key] for key in names if key in spec})
        if settings.interactions not in INTERACTIONS:
            raise ValueError(f"models.<ials>.interactions must be one of {INTERACTIONS}, got {settings.interactions!r}")
        if settings.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"models.<ials>.device must be auto, cpu or cuda, got {settings.device!r}")
        return settings


def interaction_matrix(data: SplitData, interactions: str = "binary") -> sparse.csr_matrix:
    """[users x items] float32 CSR of the train pairs, valued as `interactions` says (before
    alpha), with sorted indices (SplitData keeps each user's tracks in listening order)."""
    if interactions == "binary":
        values = np.ones(len(data.train.indices), dtype=np.float32)
    elif interactions == "plays":
        values = np.asarray(data.train_plays, dtype=np.float32)
    elif interactions == "log_plays":
        values = (1.0 + np.log(np.maximum(np.asarray(data.train_plays, dtype=np.float64), 1.0))).astype(np.float32)
    else:
        raise ValueError(f"interactions must be one of {INTERACTIONS}, got {interactions!r}")
    if len(values) != len(data.train.indices):
        raise ValueError(f"train_plays has {len(values)} values for {len(data.train.indices)} train pairs")
    if interactions != "binary" and not np.all(values > 0):
        raise ValueError("interactions: plays needs a positive play count on every train pair (found 0 or less)")
    matrix = sparse.csr_matrix(
        (values, np.asarray(data.train.indices, dtype=np.int32), np.asarray(data.train.indptr, dtype=np.int64)),
        shape=(data.n_users, data.n_items),
    )
    matrix.sort_indices()
    return matrix


def use_gpu(device: str) -> bool:
    """implicit's CUDA build when the setting allows it and it is present (the PyPI wheel is
    CPU-only; conda-forge's `implicit` GPU build has it)."""
    import implicit.gpu

    available = bool(implicit.gpu.HAS_CUDA) and torch.cuda.is_available()
    if device == "cuda" and not available:
        raise RuntimeError(
            "models.<ials>.device is 'cuda' but implicit has no CUDA build here (implicit.gpu.HAS_CUDA is False "
            "or no GPU is visible); use 'auto' or 'cpu'"
        )
    return device != "cpu" and available


def fit_factors(matrix: sparse.csr_matrix, settings: IALSSettings, seed: int, threads: int = 0) -> tuple[np.ndarray, np.ndarray, str]:
    """(user factors, item factors, 'cpu'|'gpu') of implicit's ALS on `matrix`, seeded.
    BLAS is held to one thread while it runs: implicit parallelises over users itself, and
    a threaded BLAS inside each of its threads oversubscribes the cores (its own warning)."""
    from implicit.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    gpu = use_gpu(settings.device)
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=settings.factors,
            regularization=settings.regularization,
            alpha=settings.alpha,
            iterations=settings.iterations,
            use_gpu=gpu,
            num_threads=threads,
            random_state=seed,
        )
        model.fit(matrix, show_progress=False)
    if gpu:
        model = model.to_cpu()
    return np.asarray(model.user_factors, dtype=np.float32), np.asarray(model.item_factors, dtype=np.float32), "gpu" if gpu else "cpu"


class IALS(Recommender):
    """Fitted iALS factors; scores are user · item (no bias, no cosine: iALS's own score)."""

    def __init__(self, data: SplitData, settings: IALSSettings, seed: int, threads: int = 0) -> None:
        matrix = interaction_matrix(data, settings.interactions)
        users, items, where = fit_factors(matrix, settings, seed, threads)
        unheard = np.diff(matrix.tocsc().indptr) == 0
        items[unheard] = 0.0  # no train listen: no collaborative signal, a tie (module docstring)
        self.users = torch.from_numpy(users)
        self.items = torch.from_numpy(items)
        self.run_info = {"implicit_device": where, "n_items_without_train_pairs": int(unheard.sum())}

    def factors(self) -> Factors:
        return Factors(users=self.users, items=self.items)

    def saved_state(self) -> dict[str, torch.Tensor]:
        return {"user_factors": self.users.clone(), "item_factors": self.items.clone()}


def build(context: RunContext) -> IALS:
    """The registry's entry point (ials.yaml declares the type)."""
    return IALS(context.data, IALSSettings.from_config(context.spec), context.seed, threads=torch.get_num_threads())

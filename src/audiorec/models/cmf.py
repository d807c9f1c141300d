"""cmf: content-regularised weighted matrix factorisation (the "relaxed" content-aware WMF of
Magron & Févotte 2021, with a linear content map): iALS's objective plus a pull of each item
factor towards what its content predicts,

    Σ_{u,i} c_ui (p_ui − w_u·h_i)² + λ_W Σ_u |w_u|² + λ_H Σ_i |h_i − Bᵀx_i|² + ρ |B|²,

with iALS's confidences (a listened pair weighs alpha × its value with target 1, every other
pair 1 with target 0). Why next to content2cf: there the factors are fitted first and content
regressed onto them afterwards; here content shapes the factors while they are fitted, so a
rarely played track's factor leans on its audio, and a track nobody played gets exactly its
content's prediction Bᵀx (the minimiser of its only term), which is how cmf scores cold tracks.

Solved by alternating least squares: users given items (iALS's step), B given items (ridge over
the warm tracks, with an intercept), items given users and Bᵀx (iALS's step with the prior as
the ridge's centre).

Why the defaults are not iALS's (regularization 10 and content_weight 10, not 0.01): the data
term is unchanged by W -> sW, H -> H/s, B -> B/s, while λ_W|W|² grows with s² and the content
terms shrink with 1/s²; with iALS's tiny λ_W the fit takes s large, the item factors tiny and
the content prior inert (on the synthetic warm split cmf then equalled itself with random
vectors to 4 digits). Comparable penalties on both sides keep the prior in play (docs/models.md).

Each user/item step is a few conjugate-gradient iterations per row warm-
started from the previous factors (Takács et al. 2011; `cg_steps`, as implicit's solver),
written here in torch because implicit has no prior mean; its matrix-vector products touch only
the listened pairs (the unlistened ones enter through one Gram matrix), so a sweep costs
O(pairs × factors), not O(pairs × factors²).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .base import Factors, Recommender
from .data import SplitData
from .ials import INTERACTIONS, interaction_matrix

if TYPE_CHECKING:
    from .registry import RunContext

CHUNK = 1 << 18  # listened pairs per gather (bounded memory at 5M pairs × 128 factors)


@dataclass(frozen=True)
class CMFSettings:
    factors: int = 64
    regularization: float = 10.0
    content_weight: float = 10.0
    content_ridge: float = 1.0
    alpha: float = 10.0
    iterations: int = 15
    cg_steps: int = 3
    interactions: str = "binary"

    @classmethod
    def from_config(cls, spec: dict[str, Any]) -> CMFSettings:
        settings = cls(**{key: spec[key] for key in cls.__dataclass_fields__ if key in spec})
        if settings.interactions not in INTERACTIONS:
            raise ValueError(f"models.<cmf>.interactions must be one of {INTERACTIONS}, got {settings.interactions!r}")
        if settings.content_weight <= 0 or settings.content_ridge < 0 or settings.regularization < 0:
            raise ValueError("models.<cmf>: content_weight must be > 0, content_ridge and regularization >= 0")
        return settings


@dataclass(frozen=True)
class Side:
    """One side's listened pairs grouped by row: row, column and confidence per pair."""

    rows: torch.Tensor
    cols: torch.Tensor
    conf: torch.Tensor
    n_rows: int


def sides(matrix, alpha: float, device: torch.device) -> tuple[Side, Side]:
    """(users' pairs, items' pairs) of a CSR [users x items] of values (confidence = alpha × value)."""
    coo = matrix.tocoo()
    u = torch.from_numpy(coo.row.astype(np.int64)).to(device)
    i = torch.from_numpy(coo.col.astype(np.int64)).to(device)
    c = torch.from_numpy((alpha * coo.data).astype(np.float32)).to(device)
    return Side(u, i, c, matrix.shape[0]), Side(i, u, c, matrix.shape[1])


def solve_rows(x: torch.Tensor, fixed: torch.Tensor, side: Side, reg: float, prior: torch.Tensor | None, steps: int) -> torch.Tensor:
    """Per row r, `steps` conjugate-gradient iterations from x[r] on

        (FᵀF + Σ_{j∈r} (c_j − 1) f_j f_jᵀ + reg·I) x_r = Σ_{j∈r} c_j f_j + reg·prior_r

    (F = `fixed`, the other side's factors): the minimiser of row r's part of the objective."""
    gram = fixed.T @ fixed

    def matvec(v: torch.Tensor) -> torch.Tensor:
        out = v @ gram + reg * v
        for s in range(0, len(side.rows), CHUNK):
            r, c, w = side.rows[s : s + CHUNK], side.cols[s : s + CHUNK], side.conf[s : s + CHUNK] - 1.0
            f = fixed[c]
            out.index_add_(0, r, (w * (f * v[r]).sum(1))[:, None] * f)
        return out

    b = torch.zeros_like(x) if prior is None else reg * prior
    for s in range(0, len(side.rows), CHUNK):
        b.index_add_(0, side.rows[s : s + CHUNK], side.conf[s : s + CHUNK, None] * fixed[side.cols[s : s + CHUNK]])
    x = x.clone()
    res = b - matvec(x)
    p = res.clone()
    rs = (res * res).sum(1)
    for _ in range(steps):
        ap = matvec(p)
        step = rs / (p * ap).sum(1).clamp_min(1e-30)
        x += step[:, None] * p
        res -= step[:, None] * ap
        new = (res * res).sum(1)
        p = res + (new / rs.clamp_min(1e-30))[:, None] * p
        rs = new
    return x


def ridge(x: torch.Tensor, y: torch.Tensor, penalty: float) -> torch.Tensor:
    """B minimising |y − [x, 1] B|² + penalty |B without the intercept row|²."""
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype, device=x.device)], dim=1)
    eye = torch.eye(design.shape[1], dtype=x.dtype, device=x.device)
    eye[-1, -1] = 0.0
    gram = design.T @ design + penalty * eye
    return torch.linalg.solve(gram + 1e-8 * torch.eye(len(gram), dtype=x.dtype, device=x.device), design.T @ y)


def predict(x: torch.Tensor, coef: torch.Tensor) -> torch.Tensor:
    return x @ coef[:-1] + coef[-1]


def fit(
    data: SplitData, content: np.ndarray, missing: np.ndarray, settings: CMFSettings, seed: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, Any]]:
    """(user factors, item factors, content map B, run info) of the alternating least squares."""
    matrix = interaction_matrix(data, settings.interactions)
    by_user, by_item = sides(matrix, settings.alpha, device)
    listened = np.diff(matrix.tocsc().indptr) > 0
    warm = listened & ~missing
    if not warm.any():
        raise ValueError("cmf: no track has both a train listen and a vector; nothing to learn the content map from")
    gen = torch.Generator().manual_seed(seed)
    users = (0.01 * torch.randn(data.n_users, settings.factors, generator=gen)).to(device)
    items = (0.01 * torch.randn(data.n_items, settings.factors, generator=gen)).to(device)
    x = torch.from_numpy(np.ascontiguousarray(np.where(missing[:, None], 0.0, content), dtype=np.float32)).to(device)
    warm_t = torch.from_numpy(warm).to(device)
    has_vector = torch.from_numpy(~missing).to(device)[:, None]
    for _ in range(settings.iterations):
        users = solve_rows(users, items, by_user, settings.regularization, None, settings.cg_steps)
        coef = ridge(x[warm_t], items[warm_t], settings.content_ridge / settings.content_weight)
        prior = torch.where(has_vector, predict(x, coef), torch.zeros_like(items))
        items = solve_rows(items, users, by_item, settings.content_weight, prior, settings.cg_steps)
    coef = ridge(x[warm_t], items[warm_t], settings.content_ridge / settings.content_weight)
    content_pred = predict(x, coef)
    unheard = torch.from_numpy(~listened).to(device)
    items = torch.where(unheard[:, None], content_pred, items)  # nobody played it: its content's prediction
    items[torch.from_numpy(missing).to(device)] = 0.0  # no vector: never a candidate, no made-up factor
    resid = items[warm_t] - content_pred[warm_t]
    explained = 1.0 - float((resid**2).sum() / ((items[warm_t] - items[warm_t].mean(0)) ** 2).sum().clamp_min(1e-12))
    info = {"cmf_content_r2": explained, "n_warm_items": int(warm.sum()), "n_items_from_content": int((~listened & ~missing).sum())}
    return users.cpu(), items.cpu(), coef.cpu(), info


class CMF(Recommender):
    def __init__(self, data: SplitData, vectors: np.ndarray, missing: np.ndarray, settings: CMFSettings, seed: int,
                 device: torch.device) -> None:  # fmt: skip
        if vectors.shape[0] != data.n_items:
            raise ValueError(f"cmf: {vectors.shape[0]} vectors for {data.n_items} tracks")
        self.users, self.items, self.coef, self.run_info = fit(data, vectors, missing, settings, seed, device)

    def factors(self) -> Factors:
        return Factors(users=self.users, items=self.items)

    def saved_state(self) -> dict[str, torch.Tensor]:
        return {"user_factors": self.users.clone(), "item_factors": self.items.clone(), "content_map": self.coef.clone()}


def build(context: RunContext) -> CMF:
    """The registry's entry point (cmf.yaml declares the type)."""
    if context.vectors is None:
        raise ValueError("cmf needs item vectors (a backend, or `random`)")
    settings = CMFSettings.from_config(context.spec)
    return CMF(context.data, context.vectors.vectors, context.vectors.missing, settings, context.seed, context.device)

"""Confidence intervals, paired tests and the Holm correction used by the report.

Why these choices:
- Confidence intervals are Student-t intervals of a mean over users,
  mean ± t(1-α/2, n-1) · sd/√n with the sample sd (ddof=1). Users are the sampling
  unit (seeds are averaged per user first), and with thousands of users the t interval
  of a bounded per-user metric is accurate; it is also deterministic, unlike a bootstrap.
- Backends are compared on the *same* users, so the tests are paired: the paired
  t-test on the per-user differences, and a sign-flip randomisation test, which
  makes no normality assumption (under H0 "no difference" each user's difference is
  as likely to have either sign). Its p-value is exact (all 2^n sign vectors) when
  2^n does not exceed the number of permutations asked for, otherwise Monte Carlo
  with the (1 + count) / (1 + B) estimate of Phipson & Smyth (2010), which is never 0.
- The effect size is Cohen's d_z = mean(d) / sd(d), the standardised mean of the
  paired differences.
- Holm's step-down correction controls the family-wise error rate without assuming
  independence between the tests of a family.
- Gains (a model with content over its collaborative-only version, report/gains.py) get
  paired percentile-bootstrap intervals over users: the users are resampled once per
  replicate for both runs alike, so the interval is that of the mean per-user difference
  without assuming its distribution (NDCG differences are heavily tied at zero).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class MeanCI:
    mean: float
    ci_low: float | None
    ci_high: float | None
    n: int


def mean_ci(values: np.ndarray, confidence: float = 0.95) -> MeanCI:
    """Mean and Student-t confidence interval; no interval (None) from fewer than 2 values."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"mean_ci needs a non-empty 1-d array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("mean_ci: values contain NaN or inf")
    mean = float(x.mean())
    n = x.size
    if n < 2:
        return MeanCI(mean, None, None, n)
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return MeanCI(mean, mean - half, mean + half, n)


@dataclass(frozen=True)
class PairedT:
    mean_diff: float
    ci_low: float | None
    ci_high: float | None
    effect_size: float | None
    p_value: float | None
    n: int


def _paired_differences(a: np.ndarray, b: np.ndarray, caller: str) -> np.ndarray:
    """a - b in float64 for the paired statistics, refusing what cannot be paired (unequal or
    non-1-d arrays, no pairs) with the caller's name in the message."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"{caller} needs two 1-d arrays of equal length, got {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError(f"{caller}: no pairs")
    return a - b


def paired_t_test(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> PairedT:
    """Paired t-test of mean(a - b) = 0 (two-sided), the difference's t interval and d_z.

    Degenerate inputs are answered rather than turned into NaN: identical a and b give
    p = 1 and d_z = 0; a constant non-zero difference gives p = 0 and no d_z (it would be
    infinite); fewer than 2 pairs give no test at all (None).
    """
    d = _paired_differences(a, b, "paired_t_test")
    n = d.size
    mean = float(d.mean())
    if n < 2:
        return PairedT(mean, None, None, None, None, n)
    sd = float(d.std(ddof=1))
    # A constant difference, up to rounding (0.1 + 0.5 - 0.1 is not exactly 0.5).
    if sd <= 1e-12 * float(np.abs(d).max()):
        if mean == 0.0:
            return PairedT(0.0, 0.0, 0.0, 0.0, 1.0, n)
        return PairedT(mean, mean, mean, None, 0.0, n)
    se = sd / math.sqrt(n)
    t = mean / se
    p = float(2.0 * sps.t.sf(abs(t), n - 1))
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1) * se)
    return PairedT(mean, mean - half, mean + half, mean / sd, p, n)


def sign_flip_pvalues(
    diffs: np.ndarray,
    n_permutations: int,
    rng: np.random.Generator,
    chunk: int = 1024,
) -> np.ndarray:
    """Two-sided sign-flip randomisation p-values of mean(d) = 0, one per column of diffs [n, T].

    The same sign vectors serve every column (each p-value is valid on its own, and one
    matrix product per chunk tests all comparisons of a family at once).
    """
    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim == 1:
        d = d[:, None]
    n, n_tests = d.shape
    if n == 0:
        raise ValueError("sign_flip_pvalues: no pairs")
    observed = np.abs(d.sum(axis=0))
    # Sums are compared up to floating-point noise, so that sign vectors giving the
    # same |sum| as the observed one (e.g. all-zero differences) count as "as extreme".
    tol = 1e-9 * (np.abs(d).sum(axis=0) + 1e-300)
    threshold = observed - tol
    exact = n < 63 and 2**n <= n_permutations
    count = np.zeros(n_tests, dtype=np.int64)
    total = 2**n if exact else n_permutations
    for start in range(0, total, chunk):
        size = min(chunk, total - start)
        if exact:
            codes = np.arange(start, start + size, dtype=np.int64)[:, None]
            bits = (codes >> np.arange(n, dtype=np.int64)[None, :]) & 1
        else:
            bits = rng.integers(0, 2, size=(size, n), dtype=np.int8)
        signs = 1.0 - 2.0 * bits.astype(np.float64)
        count += (np.abs(signs @ d) >= threshold).sum(axis=0)
    if exact:
        return count / total
    return (count + 1) / (total + 1)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values (monotone, capped at 1), in the input order."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError("holm: expected a 1-d array")
    if np.isnan(p).any():
        raise ValueError("holm: NaN p-values; drop untestable comparisons before correcting")
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m, dtype=np.float64)
    out[order] = adjusted_sorted
    return out


@dataclass(frozen=True)
class BootstrapCI:
    mean_diff: float
    ci_low: float | None
    ci_high: float | None
    n: int


def paired_bootstrap_ci(
    a: np.ndarray,
    b: np.ndarray,
    resamples: int = 2000,
    confidence: float = 0.95,
    rng: np.random.Generator | None = None,
    chunk: int = 256,
) -> BootstrapCI:
    """Percentile interval of mean(a - b) from `resamples` paired bootstrap replicates: each
    replicate draws n users with replacement (the same users for a and b) and takes the mean
    difference. Replicates are drawn in chunks (bounded memory at 17k users), in the same order
    as one draw per replicate, so the result depends only on `rng`. Fewer than 2 pairs: no
    interval (None)."""
    if resamples < 1:
        raise ValueError(f"paired_bootstrap_ci: resamples must be at least 1, got {resamples}")
    d = _paired_differences(a, b, "paired_bootstrap_ci")
    n = d.size
    mean = float(d.mean())
    if n < 2:
        return BootstrapCI(mean, None, None, n)
    rng = rng if rng is not None else np.random.default_rng(0)
    means = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, chunk):
        size = min(chunk, resamples - start)
        means[start : start + size] = d[rng.integers(0, n, size=(size, n))].mean(axis=1)
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return BootstrapCI(mean, float(low), float(high), n)

"""Confidence intervals, paired tests and Holm against scipy and statsmodels."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import DescrStatsW

from audiorec.evaluation.stats import holm, mean_ci, paired_bootstrap_ci, paired_t_test, sign_flip_pvalues


def test_mean_ci_matches_statsmodels():
    x = np.random.default_rng(0).random(57)
    got = mean_ci(x, confidence=0.95)
    low, high = DescrStatsW(x).tconfint_mean(alpha=0.05)
    assert got.mean == pytest.approx(x.mean())
    assert (got.ci_low, got.ci_high) == pytest.approx((low, high))
    low90, high90 = sps.t.interval(0.9, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    got90 = mean_ci(x, confidence=0.9)
    assert (got90.ci_low, got90.ci_high) == pytest.approx((low90, high90))


def test_mean_ci_degenerate_inputs():
    one = mean_ci(np.array([0.3]))
    assert (one.mean, one.ci_low, one.ci_high, one.n) == (0.3, None, None, 1)
    const = mean_ci(np.zeros(10))
    assert (const.ci_low, const.ci_high) == (0.0, 0.0)
    with pytest.raises(ValueError, match="NaN"):
        mean_ci(np.array([0.1, np.nan]))


def test_paired_t_matches_scipy_and_statsmodels():
    rng = np.random.default_rng(1)
    a = rng.random(40)
    b = a - 0.05 + 0.2 * rng.standard_normal(40)
    got = paired_t_test(a, b)
    ref = sps.ttest_rel(a, b)
    assert got.p_value == pytest.approx(ref.pvalue)
    d = a - b
    low, high = DescrStatsW(d).tconfint_mean(alpha=0.05)
    assert (got.ci_low, got.ci_high) == pytest.approx((low, high))
    assert got.mean_diff == pytest.approx(d.mean())
    assert got.effect_size == pytest.approx(d.mean() / d.std(ddof=1))
    ci = ref.confidence_interval(0.95)
    assert (got.ci_low, got.ci_high) == pytest.approx((ci.low, ci.high))


def test_paired_t_degenerate_inputs():
    x = np.array([0.1, 0.2, 0.3])
    same = paired_t_test(x, x)
    assert (same.p_value, same.effect_size, same.mean_diff) == (1.0, 0.0, 0.0)
    shifted = paired_t_test(x + 0.5, x)
    assert shifted.p_value == 0.0 and shifted.effect_size is None
    assert shifted.mean_diff == pytest.approx(0.5)
    single = paired_t_test(np.array([1.0]), np.array([0.0]))
    assert single.p_value is None
    with pytest.raises(ValueError, match="equal length"):
        paired_t_test(x, x[:2])


def test_sign_flip_exact_matches_scipy_and_enumeration():
    rng = np.random.default_rng(2)
    d = rng.standard_normal(10) + 0.4
    got = sign_flip_pvalues(d, n_permutations=2**10, rng=np.random.default_rng(0))[0]
    # Enumerate by hand.
    obs = abs(d.sum())
    flips = np.array(list(itertools.product([1, -1], repeat=len(d))))
    expected = np.mean(np.abs(flips @ d) >= obs - 1e-12)
    assert got == pytest.approx(expected)
    # scipy's paired ("samples") permutation test is exact here too.
    ref = sps.permutation_test(
        (d, np.zeros_like(d)),
        lambda x, y: np.mean(x - y),
        permutation_type="samples",
        alternative="two-sided",
        n_resamples=np.inf,
    )
    assert got == pytest.approx(ref.pvalue)


def test_sign_flip_monte_carlo_close_to_exact_and_seeded():
    rng = np.random.default_rng(3)
    d = np.stack([rng.standard_normal(200) * 0.5 + 0.08, rng.standard_normal(200)], axis=1)
    p1 = sign_flip_pvalues(d, 4000, np.random.default_rng(5))
    p2 = sign_flip_pvalues(d, 4000, np.random.default_rng(5))
    np.testing.assert_array_equal(p1, p2)
    ref = [
        sps.permutation_test(
            (d[:, j], np.zeros(200)),
            lambda x, y: np.mean(x - y),
            permutation_type="samples",
            n_resamples=20000,
            rng=np.random.default_rng(9),
        ).pvalue
        for j in range(2)
    ]
    # Monte Carlo error of a p near 0.02..0.9 with 4000 draws is below ~0.016.
    np.testing.assert_allclose(p1, ref, atol=0.03)
    assert (p1 > 0).all()


def test_sign_flip_zero_differences_and_extreme_case():
    assert sign_flip_pvalues(np.zeros(50), 500, np.random.default_rng(0))[0] == 1.0
    # Every difference positive and large: only the identity (and full flip) is as extreme.
    p = sign_flip_pvalues(np.ones(500), 999, np.random.default_rng(0))[0]
    assert p == pytest.approx(1 / 1000)


def test_holm_matches_statsmodels():
    rng = np.random.default_rng(4)
    for m in (1, 2, 7, 30):
        p = rng.random(m) ** 3
        p[: m // 3] = p[0]  # ties
        expected = multipletests(p, method="holm")[1]
        np.testing.assert_allclose(holm(p), expected)
    with pytest.raises(ValueError, match="NaN"):
        holm(np.array([0.1, np.nan]))


def test_paired_bootstrap_ci_equals_a_straightforward_numpy_loop():
    """One replicate at a time: draw n user indices, mean of a[idx] - b[idx]; percentiles."""
    rng = np.random.default_rng(5)
    a = rng.random(57)
    b = a - 0.05 + 0.1 * rng.standard_normal(57)
    got = paired_bootstrap_ci(a, b, resamples=700, confidence=0.9, rng=np.random.default_rng(11), chunk=64)
    ref_rng = np.random.default_rng(11)
    reps = []
    for _ in range(700):
        idx = ref_rng.integers(0, 57, size=57)
        reps.append(np.mean(a[idx]) - np.mean(b[idx]))
    assert got.mean_diff == pytest.approx(np.mean(a - b))
    assert got.ci_low == pytest.approx(np.percentile(reps, 5), rel=1e-12)
    assert got.ci_high == pytest.approx(np.percentile(reps, 95), rel=1e-12)
    assert got.n == 57 and got.ci_low < got.mean_diff < got.ci_high
    # with many users the interval is close to the t interval of the differences
    big = rng.standard_normal(4000) + 0.2
    t = paired_t_test(big, np.zeros_like(big))
    boot = paired_bootstrap_ci(big, np.zeros_like(big), resamples=2000, rng=np.random.default_rng(0))
    assert boot.ci_low == pytest.approx(t.ci_low, abs=0.01) and boot.ci_high == pytest.approx(t.ci_high, abs=0.01)


def test_paired_bootstrap_ci_degenerate_inputs():
    assert paired_bootstrap_ci(np.array([0.3]), np.array([0.1])).ci_low is None
    same = paired_bootstrap_ci(np.full(5, 0.4), np.full(5, 0.4))
    assert (same.mean_diff, same.ci_low, same.ci_high) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="equal length"):
        paired_bootstrap_ci(np.zeros(3), np.zeros(4))

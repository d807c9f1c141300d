"""Report figures: the per-user view draws HR@K as a share with a Wilson interval."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from statsmodels.stats.proportion import proportion_confint

from audiorec.report import figures
from audiorec.report.aggregate import Catalogue, ReportSettings


@pytest.mark.parametrize(("hits", "n", "confidence"), [(5, 10, 0.95), (0, 10, 0.95), (10, 10, 0.9), (37, 364, 0.99)])
def test_wilson_interval_matches_statsmodels(hits, n, confidence):
    expected = proportion_confint(hits, n, alpha=1 - confidence, method="wilson")
    np.testing.assert_allclose(figures.wilson_interval(hits, n, confidence), expected, atol=1e-12)


def test_wilson_interval_hand_value():
    low, high = figures.wilson_interval(5, 10, 0.95)  # the textbook 5/10 at 95%
    assert round(low, 4) == 0.2366 and round(high, 4) == 0.7634


def test_per_user_figure_draws_hit_shares(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    frames = []
    for backend, rate in (("mfcc", 0.3), ("random", 0.1)):
        hit = (rng.random(50) < rate).astype(float)
        frames.append(
            pl.DataFrame(
                {"user_id": [f"u{i}" for i in range(50)], "ndcg": hit * rng.random(50), "recall": hit * 0.5, "hitrate": hit}
            ).with_columns(split=pl.lit("test"), model=pl.lit("knn"), backend=pl.lit(backend))
        )
    drawn = []
    real = figures.wilson_interval
    monkeypatch.setattr(figures, "wilson_interval", lambda h, n, c: drawn.append((h, n, c)) or real(h, n, c))
    figures.per_user_distributions(
        pl.concat(frames),
        ReportSettings(k=10, confidence=0.9),
        Catalogue(model_types={"knn": "knn"}, backend_types={"mfcc": "mfcc"}),
        "test",
        tmp_path / "per_user.png",
    )
    assert (tmp_path / "per_user.png").stat().st_size > 1000
    expected = {(int(f["hitrate"].sum()), 50, 0.9) for f in frames}
    assert set(drawn) == expected


def test_per_user_figure_draws_a_backend_without_any_hit(tmp_path):
    """At 0 hits of 3 users Wilson's lower end is 0 only up to rounding (5.6e-17 above): the
    figure must still draw (matplotlib refuses a negative error bar)."""
    frame = pl.DataFrame({"user_id": ["a", "b", "c"], "ndcg": [0.0] * 3, "recall": [0.0] * 3, "hitrate": [0.0] * 3})
    frame = frame.with_columns(split=pl.lit("test"), model=pl.lit("knn"), backend=pl.lit("mfcc"))
    catalogue = Catalogue(model_types={"knn": "knn"}, backend_types={"mfcc": "mfcc"})
    figures.per_user_distributions(frame, ReportSettings(k=10), catalogue, "test", tmp_path / "per_user.png")
    assert (tmp_path / "per_user.png").stat().st_size > 1000

"""report/gains.py: which runs are paired, the gains and their bootstrap intervals on a
hand-made metrics tree (warm and cold), and the figure."""

from __future__ import annotations

import zlib

import matplotlib.image as mpimg
import numpy as np
import polars as pl
import pytest
from test_report_aggregate import write_runs

from audiorec.evaluation.stats import paired_bootstrap_ci
from audiorec.report.aggregate import Catalogue
from audiorec.report.collect import load_per_user, seed_average
from audiorec.report.gains import GainSettings, Pair, build_gains, plan_pairs

CATALOGUE = Catalogue(
    model_types={"pop": "pop", "ials": "ials", "knn": "knn", "shallow": "shallow", "shallow_hybrid": "shallow",
                 "shallow_noise": "shallow", "content2cf": "content2cf", "contrastive": "contrastive"},
    backend_types={"mfcc": "mfcc", "musicnn": "musicnn"},
    model_ways={"pop": "", "ials": "", "knn": "content", "shallow": "content, standard", "shallow_hybrid": "hybrid",
                "shallow_noise": "matched_random", "content2cf": "content, standard, warm items: predicted",
                "contrastive": "content, standard, warm items: predicted"},
)  # fmt: skip
RUNS = {
    "pop": ["none"], "ials": ["none"], "knn": ["mfcc"], "shallow": ["mfcc", "musicnn", "random"],
    "shallow_hybrid": ["mfcc"], "shallow_noise": ["mfcc"], "content2cf": ["mfcc", "random"], "contrastive": ["musicnn"],
}  # fmt: skip


def levels(cold: bool) -> dict[tuple[str, str], float]:
    """Warm: content adds a little; cold: the collaborative-only runs are near zero, content a lot."""
    base = 0.02 if cold else 0.30
    return {
        ("pop", "none"): 0.1, ("ials", "none"): base, ("knn", "mfcc"): 0.2, ("shallow", "random"): base,
        ("shallow", "mfcc"): 0.35, ("shallow", "musicnn"): 0.40, ("shallow_hybrid", "mfcc"): 0.33,
        ("shallow_noise", "mfcc"): 0.1, ("content2cf", "mfcc"): 0.3 if cold else 0.32,
        ("content2cf", "random"): 0.02, ("contrastive", "musicnn"): 0.25 if cold else 0.31,
    }  # fmt: skip


def test_pairs_each_way_of_using_content_with_its_collaborative_only_version():
    runs = {(m, b) for m, bs in RUNS.items() for b in bs}
    pairs = plan_pairs(runs, CATALOGUE)
    assert pairs == [
        Pair("shallow", "content", "mfcc", "shallow", "random"),
        Pair("shallow", "content", "musicnn", "shallow", "random"),
        Pair("shallow_hybrid", "hybrid", "mfcc", "shallow", "random"),  # the type's id run
        Pair("content2cf", "content2cf", "mfcc", "ials", "none"),  # its random vectors are no way
        Pair("contrastive", "contrastive", "musicnn", "ials", "none"),
    ]
    # without ials or any items: id run there is nothing to measure a gain against
    assert plan_pairs({("content2cf", "mfcc"), ("shallow", "mfcc")}, CATALOGUE) == []


def test_gains_equal_the_paired_differences_with_their_bootstrap_intervals(tmp_path):
    warm_files = write_runs(tmp_path / "warm", runs=RUNS, level=levels(False))
    cold_files = write_runs(tmp_path / "cold", runs=RUNS, level=levels(True))
    settings = GainSettings(k=50, resamples=300, seed=3)
    out = tmp_path / "report"
    frame = build_gains(warm_files, cold_files, CATALOGUE, settings, out / "gains.csv", out / "figures" / "gains.png")
    assert pl.read_csv(out / "gains.csv").shape == frame.shape
    assert frame["protocol"].to_list() == sorted(frame["protocol"].to_list(), key=["warm", "cold"].index)
    assert frame.filter(pl.col("metric") == "ndcg").height == 2 * 5
    # one row against a hand computation: the per-user differences of the seed-averaged metrics
    cold = seed_average(load_per_user(cold_files)).filter(pl.col("split") == "test")
    a = cold.filter((pl.col("model") == "content2cf") & (pl.col("backend") == "mfcc")).sort("user_id")["ndcg"].to_numpy()
    b = cold.filter(pl.col("model") == "ials").sort("user_id")["ndcg"].to_numpy()
    row = frame.filter((pl.col("protocol") == "cold") & (pl.col("model") == "content2cf") & (pl.col("metric") == "ndcg")).row(0, named=True)
    assert row["gain"] == pytest.approx((a - b).mean()) and row["base_mean"] == pytest.approx(b.mean())
    key = "\0".join(("cold", "content2cf", "mfcc", "ials", "none", "ndcg"))
    ci = paired_bootstrap_ci(a, b, 300, 0.95, np.random.default_rng([3, zlib.crc32(key.encode())]))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.ci_low, ci.ci_high))
    assert row["relative"] == pytest.approx(row["gain"] / row["base_mean"]) and row["n_users"] == 30
    # planted: content helps far more on cold tracks than on warm ones, and the interval shows it
    ndcg = frame.filter(pl.col("metric") == "ndcg")
    warm_gain = dict(ndcg.filter(pl.col("protocol") == "warm").select(pl.concat_str("model", "backend"), "gain").iter_rows())
    for r in ndcg.filter(pl.col("protocol") == "cold").iter_rows(named=True):
        assert r["ci_low"] > 0.1 and r["gain"] > warm_gain[r["model"] + r["backend"]] + 0.1, r
    image = mpimg.imread(out / "figures" / "gains.png")
    assert image.shape[0] > 150 and image[..., :3].std() > 0.05


def test_no_pairs_give_an_empty_table_with_its_header_and_a_figure_that_says_so(tmp_path):
    """A config with a cold sibling but no way of using content with a collaborative-only
    version (pop and knn only) still gets its (empty) outputs: the rule's job succeeds."""
    runs = {"pop": ["none"], "knn": ["mfcc"]}
    level = {("pop", "none"): 0.1, ("knn", "mfcc"): 0.2}
    files = [write_runs(tmp_path / p, runs=runs, level=level) for p in ("warm", "cold")]
    out = tmp_path / "report"
    frame = build_gains(*files, CATALOGUE, GainSettings(resamples=100), out / "gains.csv", out / "gains.png")
    assert frame.is_empty() and pl.read_csv(out / "gains.csv").columns[:3] == ["protocol", "model", "way"]
    assert (out / "gains.png").stat().st_size > 1000

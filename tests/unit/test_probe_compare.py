"""MIR vs recommendation: correlations across backends and their bootstrap intervals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from audiorec.evaluation.metric_names import METRICS
from audiorec.probes.compare import CompareSettings, best_layers, build, compare


def _plant(root: Path, quality: dict[str, float]) -> tuple[list[str], list[str], list[str]]:
    """Probe outputs whose genre accuracy grows with `quality`, and KNN runs whose NDCG does too."""
    rng = np.random.default_rng(0)
    scores, preds, metrics = [], [], []
    y = np.arange(200) % 2
    for b, q in {**quality, "random": 0.0}.items():
        d = root / "probes" / b
        d.mkdir(parents=True)
        correct = rng.random(200) < 0.5 + q / 2
        guess = np.where(correct, y, 1 - y)
        acc = float(correct.mean())
        pl.DataFrame({"backend": [b], "layer": ["l"], "layer_index": [0], "configured": [True], "task": ["genre"], "kind": ["single"],
                      "metric": ["accuracy"], "value": [acc]}).write_csv(d / "scores.csv")
        pl.DataFrame({"layer": "l", "task": "genre", "track_id": [str(i) for i in range(200)], "fold": 0,
                      "truth": np.eye(2)[y].tolist(), "pred": np.eye(2)[guess].tolist()}).write_parquet(d / "predictions.parquet")
        scores.append(str(d / "scores.csv"))
        preds.append(str(d / "predictions.parquet"))
        run = root / "runs" / "knn" / b / "seed0"
        run.mkdir(parents=True)
        frame = pl.DataFrame({"user_id": [f"u{i}" for i in range(300)], **{m: np.clip(q + 0.1 * rng.standard_normal(300), 0, 1) for m in METRICS}})
        frame.write_parquet(run / "metrics_test.parquet")
        metrics.append(str(run / "metrics_test.parquet"))
    return scores, preds, metrics


def test_probe_and_recommendation_in_the_same_order_correlate_perfectly(tmp_path: Path) -> None:
    scores, preds, metrics = _plant(tmp_path, {"a": 0.1, "b": 0.5, "c": 0.9})
    side, corr, table4 = compare(scores, preds, metrics, None, {"a": "mfcc", "b": "musicnn", "c": "mert"}, CompareSettings(n_boot=50))
    row = corr.row(0, named=True)
    assert row["backends"] == 3  # random left out
    assert row["kendall_tau"] == pytest.approx(1.0) and row["spearman_rho"] == pytest.approx(1.0)
    assert row["kendall_tau_low"] <= 1.0 <= row["kendall_tau_high"] + 1e-12
    assert set(table4["task"]) == {"genre"} and table4["backends"].item() == 2  # musicnn, mert have a genres score
    layers = best_layers(scores)
    assert layers.filter(pl.col("backend") == "c")["best_layer"].item() == "l"
    build(side, corr, table4, str(tmp_path / "c.csv"), str(tmp_path / "c.md"), str(tmp_path / "f.png"), CompareSettings(), layers)
    assert "MIR vs recommendation" in (tmp_path / "c.md").read_text() and (tmp_path / "f.png").stat().st_size > 0


def test_probe_vs_sweep_puts_both_best_layers_in_one_table(tmp_path: Path) -> None:
    from audiorec.probes.compare import probe_vs_sweep

    probe_best = pl.DataFrame({
        "backend": ["mert", "mert", "musicfm", "mfcc"], "task": ["genre", "tempo", "genre", "genre"],
        "best_layer": ["layer6", "layer2", "layer9", "embedding"], "best_value": [0.9, 0.5, 0.8, 0.7],
    })
    rows = []
    for model, backend, best in (("shallow", "mert", "layer6"), ("bert4rec", "mert", "layer11"), ("shallow", "musicfm", "layer9")):
        for layer in ("layer2", "layer6", "layer9", "layer11", "weighted"):
            for split in ("val", "test"):
                rows.append({"model": model, "backend": backend, "layer_name": layer, "best": layer == best,
                             "split": split, "metric": "ndcg", "mean": 0.1})
    pl.DataFrame(rows).write_csv(tmp_path / "layer_sweep.csv")
    table = probe_vs_sweep(probe_best, tmp_path / "layer_sweep.csv")
    got = {(r["backend"], r["task"], r["model"]): (r["best_layer_by_probe"], r["best_layer_by_sweep"], r["same"]) for r in table.iter_rows(named=True)}
    assert got == {  # mfcc is not swept: left out
        ("mert", "genre", "shallow"): ("layer6", "layer6", True),
        ("mert", "tempo", "shallow"): ("layer2", "layer6", False),
        ("mert", "genre", "bert4rec"): ("layer6", "layer11", False),
        ("mert", "tempo", "bert4rec"): ("layer2", "layer11", False),
        ("musicfm", "genre", "shallow"): ("layer9", "layer9", True),
    }
    pl.DataFrame({"model": ["x"]}).write_csv(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="bad.csv: not a layer_sweep.csv"):
        probe_vs_sweep(probe_best, tmp_path / "bad.csv")

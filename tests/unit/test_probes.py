"""MIR probes: labels from dataset files, group-disjoint folds, the ridge path, metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from audiorec.probes.fit import ProbeSettings, group_splits, ridge_path, run_probe
from audiorec.probes.labels import LabelSettings, Task, load_tasks, track_groups
from audiorec.probes.metrics import scores


def _write(path: Path, rows: list[list[str]]) -> None:
    path.write_text("\n".join("\t".join(r) for r in rows) + "\n")


def test_music4all_files_give_each_kind_and_missing_columns_are_skipped(tmp_path: Path) -> None:
    ids = [f"t{i}" for i in range(12)]
    _write(tmp_path / "id_genres.tsv", [["id", "genres"]] + [[t, "rock,pop" if i % 2 else "jazz"] for i, t in enumerate(ids)])
    _write(tmp_path / "id_metadata.tsv", [["id", "key", "tempo"]] + [[t, str(i % 2), str(100 + i)] for i, t in enumerate(ids)])
    tasks = {t.name: t for t in load_tasks(tmp_path, "music4all-onion", ids, LabelSettings(min_count=2))}
    assert set(tasks) == {"genres", "key", "tempo"}  # mode, energy, ... absent: skipped
    genres = tasks["genres"]
    assert genres.kind == "multilabel" and genres.classes == ["jazz", "pop", "rock"]
    assert genres.y[1].tolist() == [0, 1, 1] and genres.y[0].tolist() == [1, 0, 0]
    assert tasks["key"].kind == "single" and tasks["key"].y.tolist() == [i % 2 for i in range(12)]
    assert tasks["tempo"].kind == "regression" and tasks["tempo"].y.tolist() == [100.0 + i for i in range(12)]
    with pytest.raises(ValueError, match="valence"):
        load_tasks(tmp_path, "music4all-onion", ids, LabelSettings(tasks=("valence",)))


def test_groups_are_artists_else_albums_else_tracks(tmp_path: Path) -> None:
    _write(tmp_path / "id_information.tsv", [["id", "artist", "album_name"], ["a", "X", "p"], ["b", "X", "q"], ["c", "", "q"]])
    groups, kind = track_groups(tmp_path, ["a", "b", "c", "d"])
    assert kind == "artist"
    assert groups.tolist() == ["artist:X", "artist:X", "album_name:q", "track:d"]


def test_outer_folds_never_split_a_group_and_cover_every_track() -> None:
    groups = np.repeat([f"g{i}" for i in range(17)], 3)
    seen = np.zeros(len(groups), dtype=int)
    for tr, te in group_splits(groups, 5, seed=3, where="test"):
        assert not set(groups[tr]) & set(groups[te])
        seen[te] += 1
    assert (seen == 1).all()


def test_ridge_path_equals_sklearn_ridge() -> None:
    rng = np.random.default_rng(0)
    x, y, x_te = rng.standard_normal((40, 7)) * 3 + 1, rng.standard_normal((40, 2)), rng.standard_normal((9, 7))
    paths = ridge_path(x, y, x_te, (0.5, 20.0))
    scaler = StandardScaler().fit(x)
    for alpha, pred in paths.items():
        expected = Ridge(alpha=alpha).fit(scaler.transform(x), y).predict(scaler.transform(x_te))
        np.testing.assert_allclose(pred, expected, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("classifier", ["logistic", "ridge"])
def test_separable_labels_probe_perfectly_and_noise_does_not(classifier: str) -> None:
    rng = np.random.default_rng(1)
    n = 120
    y = np.arange(n) % 3
    groups = np.repeat(np.arange(n // 4), 4).astype(str)  # artists of 4 tracks
    task = Task("genre", "single", "x", [str(i) for i in range(n)], y, ["a", "b", "c"])
    separable = np.eye(3)[y] * 10 + 0.01 * rng.standard_normal((n, 3))
    settings = ProbeSettings(folds=4, inner_folds=2, classifier=classifier)
    result = run_probe(separable, task, groups, settings)
    assert (result.pred.argmax(axis=1) == y).all()
    assert sorted(set(result.fold.tolist())) == [0, 1, 2, 3]
    noise = run_probe(rng.standard_normal((n, 3)), task, groups, settings)
    assert (noise.pred.argmax(axis=1) == y).mean() < 0.6


def test_metrics_against_hand_computed_values() -> None:
    # AUC of scores (0.1, 0.4, 0.35, 0.8) for labels (0, 0, 1, 1): pairs (pos>neg) 3 of 4
    ml = scores("multilabel", np.array([[0, 1], [0, 0], [1, 1], [1, 0]]), np.array([[0.1, 0.9], [0.4, 0.1], [0.35, 0.8], [0.8, 0.2]]))
    assert ml["roc_auc"] == pytest.approx((0.75 + 1.0) / 2)
    single = scores("single", np.eye(2)[[0, 0, 0, 1]], np.eye(2)[[0, 0, 1, 1]])
    assert single["accuracy"] == pytest.approx(0.75) and single["balanced_accuracy"] == pytest.approx((2 / 3 + 1) / 2)
    reg = scores("regression", np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0]))
    assert reg["r2"] == pytest.approx(1 - 2 / 2) and reg["spearman"] == pytest.approx(0.5)

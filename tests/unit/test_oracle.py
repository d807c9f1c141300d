"""The oracle backend against hand-computed vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audiorec.backends import build_backend
from audiorec.backends.base import BackendError
from audiorec.backends.oracle import OracleBackend
from audiorec.data.synthetic.genres import GENRE_NAMES

TABLE = """id\tgenre\ttempo\tdensity\tregister\tbrightness\tenergy\tswing\tmeter\tmode\tkey
r1\trock\t100\t1.0\t60\t0.5\t0.7\t0.0\t4\tionian\tC
r2\trock\t120\t2.0\t62\t0.6\t0.7\t0.0\t4\taeolian\tD
r3\trock\t140\t3.0\t64\t0.7\t0.7\t0.0\t4\tionian\tE
p1\tpop\t100\t1.5\t70\t0.2\t0.5\t0.02\t4\tionian\tF
p2\tpop\t110\t2.5\t72\t0.4\t0.6\t0.0\t4\tmixolydian\tG
"""


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    (tmp_path / "id_genres.tsv").write_text(TABLE)
    return tmp_path


def test_registry_builds_it_and_it_needs_no_audio() -> None:
    backend = build_backend({}, name="oracle")
    assert isinstance(backend, OracleBackend) and not backend.needs_audio
    assert backend.layer_names == ["attributes"]
    assert backend.layer_dims == [len(GENRE_NAMES) + 5] and backend.embedding_dim == 15  # known without data


def test_vectors_are_genre_one_hot_plus_weighted_within_genre_z_scores(dataset: Path) -> None:
    backend = OracleBackend({"type": "oracle"})
    vectors, failures = backend.compute(dataset, ["r1", "r2", "r3", "p1", "p2"])
    assert failures == {} and vectors.shape == (5, 1, 15) and vectors.dtype == np.float32
    v = vectors[:, 0]
    rock, pop = GENRE_NAMES.index("rock"), GENRE_NAMES.index("pop")
    np.testing.assert_array_equal(v[:3, rock], 1.0)
    np.testing.assert_array_equal(v[3:, pop], 1.0)
    assert v[:, :10].sum() == 5.0
    # rock tempos 100/120/140: mean 120, population sd sqrt(800/3); z = -/+1.2247; weight 0.5
    z = 20.0 / np.sqrt(800.0 / 3.0)
    np.testing.assert_allclose(v[:3, 10], [-0.5 * z, 0.0, 0.5 * z], rtol=1e-6)
    # pop tempos 100/110 standardise to -1/+1 within pop, whatever rock does
    np.testing.assert_allclose(v[3:, 10], [-0.5, 0.5], rtol=1e-6)
    np.testing.assert_allclose(v[:3, 14], 0.0)  # energy constant within rock: zeros, not NaN
    np.testing.assert_allclose(v[3:, 14], [-0.5, 0.5], rtol=1e-6)
    assert backend.feature_names()[10:] == ["tempo", "density", "register", "brightness", "energy"]


def test_standardisation_uses_the_whole_table_whatever_the_requested_rows(dataset: Path) -> None:
    backend = OracleBackend({"type": "oracle"})
    whole, _ = backend.compute(dataset, ["r1", "r2", "r3", "p1", "p2"])
    part, _ = backend.compute(dataset, ["p2", "r1"])  # e.g. one shard
    np.testing.assert_array_equal(part[:, 0], whole[[4, 0], 0])


def test_unknown_tracks_are_failures_not_zeros_in_disguise(dataset: Path) -> None:
    vectors, failures = OracleBackend({"type": "oracle"}).compute(dataset, ["r1", "ghost"])
    assert failures == {"ghost": "not listed in id_genres.tsv"}
    assert vectors.shape == (2, 1, 15)


def test_columns_and_weight_are_configurable(dataset: Path) -> None:
    backend = OracleBackend({"type": "oracle", "columns": ["genre", "mode", "swing"], "numeric_weight": 2.0})
    assert backend.layer_dims == [10 + 7 + 1]
    v = backend.compute(dataset, ["p1", "p2"])[0][:, 0]
    names = backend.feature_names()
    assert v[0, names.index("mode=ionian")] == 1.0 and v[1, names.index("mode=mixolydian")] == 1.0
    np.testing.assert_allclose(v[:, -1], [2.0, -2.0])
    silent = OracleBackend({"type": "oracle", "numeric_weight": 0})
    np.testing.assert_array_equal(silent.compute(dataset, ["r1"])[0][0, 0, 10:], 0.0)


def test_missing_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match=r"id_genres\.tsv.*does not exist.*synthetic"):
        OracleBackend({"type": "oracle"}).compute(tmp_path, ["x"])


def test_bad_tables_and_specs_are_named(dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="loudness"):
        OracleBackend({"type": "oracle", "columns": ["genre", "loudness"]}).compute(dataset, ["r1"])
    other = tmp_path / "other"
    other.mkdir()
    (other / "id_genres.tsv").write_text(
        "id\tgenre\ttempo\tdensity\tregister\tbrightness\tenergy\tlabel\nx\tpolka\t1\t1\t1\t1\t1\tfoo\n"
    )
    with pytest.raises(BackendError, match="polka"):
        OracleBackend({"type": "oracle"}).compute(other, ["x"])
    with pytest.raises(BackendError, match="'label'.*not numeric"):
        OracleBackend({"type": "oracle", "columns": ["label"]}).compute(other, ["x"])
    with pytest.raises(BackendError, match="numeric_weight"):
        OracleBackend({"type": "oracle", "numeric_weight": -1})
    with pytest.raises(BackendError, match="columns"):
        OracleBackend({"type": "oracle", "columns": "genre"})
    with pytest.raises(BackendError, match="id"):
        OracleBackend({"type": "oracle", "columns": ["id", "genre"]})


def test_on_generated_data_the_oracle_separates_genres(tiny_dataset: Path) -> None:
    import polars as pl

    table = pl.read_csv(tiny_dataset / "id_genres.tsv", separator="\t")
    vectors, failures = OracleBackend({"type": "oracle"}).compute(tiny_dataset, table["id"].to_list())
    assert not failures and np.isfinite(vectors).all()
    v = vectors[:, 0] / np.linalg.norm(vectors[:, 0], axis=1, keepdims=True)
    same = table["genre"].to_numpy()[:, None] == table["genre"].to_numpy()[None, :]
    cosine = v @ v.T
    assert cosine[same].mean() > cosine[~same].mean() + 0.4

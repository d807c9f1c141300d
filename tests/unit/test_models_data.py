"""The split as index arrays, and item vectors: a missing track gets no invented vector."""

from __future__ import annotations

import numpy as np
import pytest
from _tiny_split import part, split, one_thread  # noqa: F401 (autouse fixture)

from audiorec.extraction.store import write_embeddings
from audiorec.models.data import load_split, split_from_frames
from audiorec.models.item_vectors import align_embeddings, load_item_vectors, random_item_vectors


def test_indices_follow_sorted_ids_and_train_is_time_ordered():
    data = split(
        train=[("b", "t2", 5), ("a", "t3", 9), ("a", "t1", 1), ("b", "t1", 2), ("a", "t2", 4)],
        val=[("a", "t4", 20)],  # a track only in val still joins the catalogue
        test=[("b", "t3", 21)],
    )
    assert data.user_ids == ["a", "b"]
    assert data.track_ids == ["t1", "t2", "t3", "t4"]
    seqs = [data.train.indices[data.train.indptr[u] : data.train.indptr[u + 1]].tolist() for u in range(2)]
    assert seqs == [[0, 1, 2], [0, 1]]  # a: t1@1, t2@4, t3@9; b: t1@2, t2@5
    assert data.parts["val"].users.tolist() == [0]
    assert data.parts["val"].n_relevant.tolist() == [1]
    assert data.parts["test"].relevant.indices.tolist() == [2]


def test_contract_violations_name_the_file(tmp_path):
    good = part([("a", "t1"), ("b", "t2")])
    for name, df in {"train": good, "val": part([("zz", "t1")]), "test": part([])}.items():
        df.write_parquet(tmp_path / f"{name}.parquet")
    with pytest.raises(ValueError, match=r"val\.parquet.*no train interactions"):
        load_split(tmp_path / "train.parquet", tmp_path / "val.parquet", tmp_path / "test.parquet")
    with pytest.raises(ValueError, match="duplicate"):
        split_from_frames({"train": part([("a", "t1"), ("a", "t1")]), "val": part([]), "test": part([])})
    with pytest.raises(ValueError, match="lacks column"):
        split_from_frames({"train": good.drop("plays"), "val": part([]), "test": part([])})
    with pytest.raises(FileNotFoundError, match="split"):
        load_split(tmp_path / "nope.parquet", tmp_path / "val.parquet", tmp_path / "test.parquet")


def test_missing_tracks_are_flagged_not_invented(tmp_path):
    write_embeddings(tmp_path / "e.h5", ["t3", "t1", "other"], np.array([[3.0, 0.0], [1.0, 2.0], [9.0, 9.0]]))
    vec = load_item_vectors(tmp_path / "e.h5", ["t1", "t2", "t3"])
    np.testing.assert_array_equal(vec.vectors, [[1.0, 2.0], [0.0, 0.0], [3.0, 0.0]])  # t2: flagged, zero row
    assert vec.missing.tolist() == [False, True, False]
    assert vec.n_missing == 1


def test_missing_share_limit_and_no_overlap_are_errors():
    with pytest.raises(ValueError, match="max_missing_share"):
        align_embeddings(["a", "b", "c"], ["a"], np.ones((1, 2)), max_missing_share=0.5)
    with pytest.raises(ValueError, match="no vector for any"):
        align_embeddings(["a", "b"], ["x"], np.ones((1, 2)))
    with pytest.raises(ValueError, match="twice"):
        align_embeddings(["a"], ["a", "a"], np.ones((2, 2)))


def test_random_vectors_are_seeded():
    a, b, c = random_item_vectors(5, 3, 0), random_item_vectors(5, 3, 0), random_item_vectors(5, 3, 1)
    np.testing.assert_array_equal(a.vectors, b.vectors)
    assert not np.array_equal(a.vectors, c.vectors)

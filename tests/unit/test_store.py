"""The HDF5 embedding cache: round trips, layers, failures, atomicity, refusing NaN."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from audiorec.extraction.records import Failure
from audiorec.extraction.store import (
    EmbeddingWriter,
    read_attrs,
    read_embeddings,
    read_failures,
    read_layer_info,
    read_layers,
    read_silent,
    write_embeddings,
)

IDS = ["a", "b", "ü-unicode"]


def test_round_trip_of_ids_vectors_and_attributes(tmp_path: Path) -> None:
    emb = np.arange(12, dtype=np.float64).reshape(3, 4)
    attrs = {
        "backend_type": "x",
        "sample_rate": 16000,
        "layer_names": ["l0", "l1"],
        "layer_dims": [4, 2],
        "spec": {"a": 1},
        "none": None,
    }
    write_embeddings(tmp_path / "e.h5", IDS, emb, attrs=attrs)
    ids, got = read_embeddings(tmp_path / "e.h5")
    assert ids == IDS
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, emb.astype(np.float32))
    back = read_attrs(tmp_path / "e.h5")
    assert back["backend_type"] == "x" and back["sample_rate"] == 16000
    assert back["layer_names"] == ["l0", "l1"] and back["layer_dims"] == [4, 2]
    assert back["spec"] == '{"a": 1}' and back["none"] == "null"


def test_layers_are_float16_and_readable_by_name_index_or_all(tmp_path: Path) -> None:
    layers = np.random.default_rng(0).standard_normal((3, 2, 4)).astype(np.float32)
    layers[:, 1, 2:] = 0.0  # layer l1 is 2 wide, zero-padded
    path = tmp_path / "e.h5"
    write_embeddings(path, IDS, layers[:, 0], layers, attrs={"layer_names": ["l0", "l1"], "layer_dims": [4, 2]})
    with h5py.File(path) as f:
        assert f["layers"].dtype == np.float16
    info = read_layer_info(path)
    assert (info.names, info.dims) == (["l0", "l1"], [4, 2])
    ids, all_layers = read_layers(path)
    assert ids == IDS and all_layers.shape == (3, 2, 4) and all_layers.dtype == np.float32
    np.testing.assert_allclose(all_layers, layers, rtol=1e-3, atol=1e-3)
    _, l1 = read_layers(path, "l1")
    assert l1.shape == (3, 2)
    np.testing.assert_allclose(l1, layers[:, 1, :2], rtol=1e-3, atol=1e-3)
    _, last = read_layers(path, -1)
    np.testing.assert_array_equal(last, l1)
    with pytest.raises(KeyError, match="no layer 'nope'"):
        read_layers(path, "nope")


def test_layers_that_overflow_float16_are_kept_as_float32(tmp_path: Path) -> None:
    layers = np.full((3, 2, 4), 1e5, dtype=np.float32)
    write_embeddings(tmp_path / "e.h5", IDS, layers[:, 0], layers)
    with h5py.File(tmp_path / "e.h5") as f:
        assert f["layers"].dtype == np.float32
    np.testing.assert_array_equal(read_layers(tmp_path / "e.h5")[1], layers)


def test_a_file_without_layers_serves_its_embedding_as_the_only_layer(tmp_path: Path) -> None:
    emb = np.ones((3, 5), dtype=np.float32)
    write_embeddings(tmp_path / "e.h5", IDS, emb, attrs={"layer_names": ["stats"], "layer_dims": [5]})
    assert read_layers(tmp_path / "e.h5")[1].shape == (3, 1, 5)
    np.testing.assert_array_equal(read_layers(tmp_path / "e.h5", "stats")[1], emb)
    with pytest.raises(KeyError):
        read_layers(tmp_path / "e.h5", 3)


def test_failures_and_silent_tracks_round_trip(tmp_path: Path) -> None:
    failures = [
        Failure("x", "audios/x.mp3", "file is empty (0 bytes)", "probe"),
        Failure("y", "", "not in table", "source"),
    ]
    write_embeddings(tmp_path / "e.h5", IDS, np.zeros((3, 2)), failures=failures, silent=["b"])
    assert read_failures(tmp_path / "e.h5") == failures
    assert read_silent(tmp_path / "e.h5") == ["b"]


def test_non_finite_vectors_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    emb = np.zeros((3, 2), dtype=np.float32)
    emb[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"non-finite embeddings for tracks \['b'\]"):
        write_embeddings(tmp_path / "e.h5", IDS, emb)
    assert list(tmp_path.iterdir()) == []


def test_streaming_writer_appears_only_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    with pytest.raises(ValueError, match="wrote 2 of the 3"), EmbeddingWriter(path, 3, 2) as w:
        w.append(["a", "b"], np.zeros((2, 2)))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="killed"), EmbeddingWriter(path, 3, 2) as w:
        w.append(["a"], np.zeros((1, 2)))
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    with EmbeddingWriter(path, 3, None, (1, 2), np.float32) as w:
        w.append(["a"], None, np.ones((1, 1, 2)))
        w.append(["b", "c"], None, np.zeros((2, 1, 2)))
    with h5py.File(path) as f:
        assert "embeddings" not in f and f["layers"].shape == (3, 1, 2)

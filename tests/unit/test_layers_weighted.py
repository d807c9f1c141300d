"""`layers: weighted` through the shared item input (models.items) and a whole training job.

The mixture's unit behaviour is in test_layer_mix.py; here: the layers stay a frozen buffer
(bit for bit, out of model.pt), a planted signal layer wins the weights, run.json reports
the weights, and the misuses are refused with the fix named."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _tiny_split import one_thread  # noqa: F401 (autouse fixture)
from test_models_items import ring_split
from test_models_run import run, split_files  # noqa: F401 (module fixture)

from audiorec.extraction.store import write_embeddings
from audiorec.models.bert4rec import Bert4Rec
from audiorec.models.items import ItemSettings
from audiorec.models.sasrec import SASRec
from audiorec.models.shallow import ShallowNet
from audiorec.models.training import TrainSettings, fit

WEIGHTED = ItemSettings("content", layers="weighted")


def make(kind: str, data, layers: np.ndarray, items: ItemSettings = WEIGHTED):
    if kind == "shallow":
        return ShallowNet(data, layers, batch_size=32, n_negatives=3, items=items)
    cls = Bert4Rec if kind == "bert4rec" else SASRec
    return cls(data, layers, hidden_size=8, n_heads=2, inner_size=16, n_layers=1, batch_size=8, max_len=10, items=items)


def planted(data, seed: int = 3) -> np.ndarray:
    """[items, 3, 4]: layer 1 places each track on the ring its users walk along (the signal),
    layers 0 and 2 are Gaussian noise of the same scale."""
    rng = np.random.default_rng(seed)
    theta = 2 * np.pi * np.array([int(t[1:]) for t in data.track_ids]) / data.n_items
    signal = np.stack([np.cos(theta), np.sin(theta), -np.cos(theta), -np.sin(theta)], axis=1)
    noise = [rng.standard_normal((data.n_items, 4)) for _ in range(2)]
    return np.stack([noise[0], signal, noise[1]], axis=1).astype(np.float32)


@pytest.mark.parametrize("kind", ["shallow", "bert4rec", "sasrec"])
def test_layers_stay_bit_for_bit_frozen_and_out_of_model_pt(kind):
    data = ring_split()
    layers = planted(data)
    torch.manual_seed(0)
    model = make(kind, data, layers)
    fit(model, data, TrainSettings(epochs=2, patience=2, k=5, lr=0.05), seed=0)
    np.testing.assert_array_equal(model.items.mix.layers.numpy(), layers)
    assert "items.mix.layers" not in model.saved_state() and "items.mix.logits" in model.saved_state()
    weights = model.items.mix.weights().detach().numpy()
    assert not np.allclose(weights, 1 / 3)  # the weights learned (they start equal)
    # no frozen table besides the buffer, and no optimiser group for the layers
    assert model.items.table is None
    assert all(p is not model.items.mix.layers for group in model.optimizer_groups(1e-3) for p in group["params"])


@pytest.mark.parametrize("kind", ["shallow", "bert4rec", "sasrec"])
def test_the_weights_favour_the_layer_that_carries_the_signal(kind):
    data = ring_split(n_users=60, n_items=30)
    torch.manual_seed(0)
    model = make(kind, data, planted(data))
    fit(model, data, TrainSettings(epochs=40, patience=100, k=5, lr=0.05), seed=0)
    weights = model.items.mix.weights().detach().numpy()
    assert weights.argmax() == 1 and weights[1] > 0.5, weights


def test_the_mixture_starts_as_the_mean_layer():
    data = ring_split()
    layers = planted(data)
    model = make("shallow", data, layers)
    np.testing.assert_allclose(model.items.content().detach().numpy(), layers.mean(axis=1), rtol=1e-6, atol=1e-7)


def test_weighted_refuses_finetune_and_a_flat_table():
    with pytest.raises(ValueError, match="frozen"):
        ItemSettings("finetune", layers="weighted")
    data = ring_split()
    with pytest.raises(ValueError, match=r"\[items, layers, dim\]"):
        make("bert4rec", data, planted(data)[:, 0])
    assert not ItemSettings.from_config({"layers": "weighted"}, "random").weighted  # a learned table: no layers


def _layered_cache(path, tracks, dims=(6, 6, 6)):
    rng = np.random.default_rng(0)
    width = max(dims)
    layers = np.zeros((len(tracks), len(dims), width), dtype=np.float32)
    for i, d in enumerate(dims):
        layers[:, i, :d] = rng.standard_normal((len(tracks), d))
    layers = layers.astype(np.float16).astype(np.float32)
    names = [f"layer{i}" for i in range(len(dims))]
    attrs = {"layer": "layer2", "layer_names": names, "layer_dims": list(dims), "backend_type": "mert"}
    write_embeddings(path, tracks, layers[:, -1, : dims[-1]], layers=layers, attrs=attrs)
    return layers


@pytest.mark.parametrize("kind", ["shallow", "bert4rec", "sasrec"])
def test_run_json_reports_the_learned_weights(split_files, tmp_path, kind):  # noqa: F811
    from test_models_run import SPECS

    from audiorec.models.run import RunPaths, train_run

    root, _ = split_files
    _layered_cache(tmp_path / "layered.h5", [f"t{i:02d}" for i in range(19)])  # t19 has no vector, as in emb.h5
    paths = RunPaths(
        train=str(root / "train.parquet"), val=str(root / "val.parquet"), test=str(root / "test.parquet"),
        embeddings=str(tmp_path / "layered.h5"), recs_val=str(tmp_path / "recs_val.parquet"),
        recs_test=str(tmp_path / "recs_test.parquet"), history=str(tmp_path / "history.csv"),
        weights=str(tmp_path / "model.pt"), info=str(tmp_path / "run.json"),
    )
    info = train_run({**SPECS[kind], "layers": "weighted"}, "mert", 0, 5, paths)
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved["layers"] == "weighted" and saved["vector_dim"] == 6 and saved["n_items_without_embedding"] == 1
    weights = saved["layer_weights"]
    assert list(weights) == ["layer0", "layer1", "layer2"] and info["layer_weights"] == weights
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-6) and all(w > 0 for w in weights.values())
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert "items.mix.layers" in state["frozen"] and "items.mix.layers" not in state["state"]
    np.testing.assert_allclose(
        torch.softmax(state["state"]["items.mix.logits"], 0).numpy(), list(weights.values()), rtol=1e-6
    )


def test_runs_without_weighted_report_no_weights(split_files, tmp_path):  # noqa: F811
    root, _ = split_files
    info = run(root, tmp_path, "shallow", "emb")
    assert "layer_weights" not in info and info["layers"] == "configured"


def test_one_layer_different_widths_and_knn_are_refused_with_the_fix(tmp_path):
    from audiorec.models.item_vectors import load_layer_stack

    tracks = [f"t{i}" for i in range(5)]
    write_embeddings(tmp_path / "flat.h5", tracks, np.ones((5, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"backend 'mfcc'.*caches only one.*leave 'mfcc' out"):
        load_layer_stack(tmp_path / "flat.h5", tracks, "mfcc")
    _layered_cache(tmp_path / "mixed.h5", tracks, dims=(4, 6, 6))
    with pytest.raises(ValueError, match=r"backend 'clap'.*one width.*layer0: 4, layer1: 6"):
        load_layer_stack(tmp_path / "mixed.h5", tracks, "clap")
    stack = _layered_cache(tmp_path / "even.h5", tracks)
    loaded = load_layer_stack(tmp_path / "even.h5", ["t3", "t0", "tx"], "mert")
    np.testing.assert_array_equal(loaded.vectors[:2], stack[[3, 0]])
    assert loaded.missing.tolist() == [False, False, True] and loaded.layer_names == ("layer0", "layer1", "layer2")

    from audiorec.models.run import build_model

    data = ring_split()
    with pytest.raises(ValueError, match="cannot learn layer weights"):
        build_model({"type": "knn", "layers": "weighted"}, "mert", data, None)


@pytest.mark.parametrize("mode", ["content", "hybrid", "id", "weighted"])
def test_item_rows_equal_the_rows_of_the_item_matrix(mode):
    """ItemInput(index) (the Shallow Net's batches) is ItemInput()[index] in every mode (up to
    float rounding of the projection's matmul over a different number of rows)."""
    from audiorec.models.items import ItemInput

    layers = np.random.default_rng(0).standard_normal((7, 3, 4)).astype(np.float32)
    settings = WEIGHTED if mode == "weighted" else ItemSettings(mode)
    content = None if mode == "id" else (layers if mode == "weighted" else layers[:, 0])
    torch.manual_seed(0)
    item_input = ItemInput(settings, 7, 5, content, project=mode != "id")
    if item_input.id_table is not None:
        torch.nn.init.normal_(item_input.id_table)
    index = torch.tensor([6, 0, 3, 3])
    np.testing.assert_allclose(item_input(index).detach().numpy(), item_input()[index].detach().numpy(), rtol=1e-6, atol=1e-7)

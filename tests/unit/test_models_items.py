"""The `items:` modes (models.items), one code path for the Shallow Net, BERT4Rec and SASRec."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _tiny_split import one_thread, sequences_split  # noqa: F401 (autouse fixture)

from audiorec.models.bert4rec import Bert4Rec
from audiorec.models.items import ItemInput, ItemSettings, matched_random_vectors, normalize_vectors
from audiorec.models.sasrec import SASRec
from audiorec.models.shallow import ShallowNet
from audiorec.models.training import TrainSettings, fit


def ring_split(n_users=24, n_items=20, seed=0):
    rng = np.random.default_rng(seed)
    seqs, val, test = {}, {}, {}
    for u in range(n_users):
        start, length = rng.integers(0, n_items), rng.integers(5, 9)
        run = [(start + j) % n_items for j in range(length + 1)]
        seqs[f"u{u:02d}"] = [f"t{i:02d}" for i in run[:-1]]
        (val if u % 2 else test)[f"u{u:02d}"] = [f"t{run[-1]:02d}"]
    return sequences_split(seqs, val, test)


def vectors_for(data, dim=12, seed=1):
    return np.random.default_rng(seed).standard_normal((data.n_items, dim)).astype(np.float32) * 3 + 1


def make(kind, data, vectors, mode, **kwargs):
    items = ItemSettings(mode, finetune_lr_factor=kwargs.pop("finetune_lr_factor", 0.1))
    if kind == "shallow":
        return ShallowNet(data, vectors, batch_size=16, n_negatives=3, items=items)
    cls = Bert4Rec if kind == "bert4rec" else SASRec
    return cls(data, vectors, hidden_size=8, n_heads=2, inner_size=16, n_layers=1, batch_size=8, max_len=10, items=items)


def train(model, data, epochs=2):
    fit(model, data, TrainSettings(epochs=epochs, patience=epochs, k=5), seed=0)
    return model


@pytest.mark.parametrize("kind", ["shallow", "bert4rec", "sasrec"])
def test_content_table_is_bit_for_bit_frozen_and_finetune_changes_it(kind):
    data = ring_split()
    vectors = vectors_for(data)
    torch.manual_seed(0)
    content = train(make(kind, data, vectors, "content"), data)
    np.testing.assert_array_equal(content.items.table.detach().numpy(), vectors)
    assert "items.table" not in content.saved_state()
    torch.manual_seed(0)
    tuned = train(make(kind, data, vectors, "finetune"), data)
    assert tuned.items.table.requires_grad and "items.table" in tuned.saved_state()
    assert not np.array_equal(tuned.items.table.detach().numpy(), vectors)


def test_finetune_trains_the_vectors_at_the_lower_rate():
    """One Adam step moves a parameter by ~lr: the vectors by ~factor x lr."""
    data = ring_split()
    vectors = vectors_for(data)
    torch.manual_seed(0)
    model = make("bert4rec", data, vectors, "finetune", finetune_lr_factor=0.01)
    groups = model.optimizer_groups(1e-2)
    assert [g["lr"] for g in groups] == [1e-2, 1e-4]
    assert groups[1]["params"] == [model.items.table]
    optimizer = torch.optim.Adam(groups)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    model.train_epoch(optimizer, np.random.default_rng(0), max_steps=1)
    table_step = (model.items.table.detach() - before["items.table"]).abs().max()
    projection_step = (model.items.projection.weight.detach() - before["items.projection.weight"]).abs().max()
    assert 0 < table_step <= 1.01e-4 < projection_step <= 1.01e-2


def test_id_mode_learns_a_table_and_reads_no_vectors():
    data = ring_split()
    torch.manual_seed(0)
    model = make("sasrec", data, None, "id")
    assert model.items.table is None and model.items.projection is None
    assert model.items.id_table.shape == (data.n_items, 8) and model.items.id_table.requires_grad
    with pytest.raises(ValueError, match="needs the backend's vectors"):
        make("bert4rec", data, None, "content")
    with pytest.raises(ValueError, match="runs as backend 'random'"):
        ItemSettings.from_config({"type": "bert4rec", "items": "id"}, "musicnn")
    assert ItemSettings.from_config({"type": "bert4rec", "items": "hybrid"}, "random").mode == "id"


def test_hybrid_is_projected_content_plus_an_id_table_that_starts_at_zero():
    data = ring_split()
    vectors = vectors_for(data)
    torch.manual_seed(0)
    model = make("bert4rec", data, vectors, "hybrid")
    with torch.no_grad():
        start = model.item_matrix().clone()
        torch.testing.assert_close(start, model.items.projection(torch.from_numpy(vectors)), rtol=0, atol=0)
    train(model, data)
    with torch.no_grad():
        expected = model.items.projection(torch.from_numpy(vectors)) + model.items.id_table
        torch.testing.assert_close(model.item_matrix(), expected, rtol=0, atol=0)
    assert model.items.id_table.abs().sum() > 0  # the ID part learned something
    np.testing.assert_array_equal(model.items.table.detach().numpy(), vectors)  # content stays frozen


def test_matched_random_has_the_width_and_moments_of_the_content_and_is_seeded():
    rng = np.random.default_rng(0)
    content = (rng.standard_normal((4000, 5)) * [1, 10, 100, 0.1, 3] + [5, -2, 0, 1, 50]).astype(np.float32)
    noise = matched_random_vectors(content, seed=3)
    assert noise.shape == content.shape and noise.dtype == np.float32
    np.testing.assert_allclose(noise.mean(0), content.mean(0), atol=0.1 * content.std(0).max())
    np.testing.assert_allclose(noise.std(0), content.std(0), rtol=0.05)
    assert abs(np.corrcoef(noise[:, 0], content[:, 0])[0, 1]) < 0.05  # no content left
    np.testing.assert_array_equal(noise, matched_random_vectors(content, seed=3))
    assert not np.array_equal(noise, matched_random_vectors(content, seed=4))


def test_normalisations_by_hand():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [6.0, 8.0]], dtype=np.float32)
    np.testing.assert_allclose(normalize_vectors(x, "l2"), [[0.6, 0.8], [0, 0], [0.6, 0.8]], rtol=1e-6)
    std = normalize_vectors(x, "standard")
    np.testing.assert_allclose(std[:, 0], (x[:, 0] - 3.0) / np.sqrt(6.0), rtol=1e-6)
    np.testing.assert_allclose(std.mean(0), 0, atol=1e-6)
    # statistics over the rows that have a vector only; a constant dimension becomes 0
    present = np.array([True, False, True])
    const = normalize_vectors(np.array([[1.0, 2.0], [9.0, 9.0], [1.0, 4.0]], dtype=np.float32), "standard", present)
    np.testing.assert_allclose(const[[0, 2]], [[0, -1], [0, 1]], atol=1e-6)
    assert normalize_vectors(x, "none") is x


def test_item_input_rejects_an_unprojected_width_mismatch():
    with pytest.raises(ValueError, match="12 wide"):
        ItemInput(ItemSettings("content"), 5, 8, np.zeros((5, 12), dtype=np.float32), project=False)

"""Shallow Net: loss, pair scoring, negative sampling, frozen items, a known answer, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _tiny_split import split, one_thread  # noqa: F401 (autouse fixture)

from audiorec.models.shallow import NegativeUserSampler, PairDot, ShallowNet, hinge_loss, pair_dot
from audiorec.models.training import TrainSettings, fit


def two_taste_split(n_users=12, n_items=16, seed=0):
    """Users 0..5 listen to items 0..7 only, users 6..11 to items 8..15 only; val/test hold
    unheard items of the same half."""
    rng = np.random.default_rng(seed)
    train, val, test = [], [], []
    for u in range(n_users):
        half = np.arange(8) if u < n_users // 2 else np.arange(8, 16)
        items = rng.permutation(half)
        train += [(f"u{u:02d}", f"t{i:02d}") for i in items[:5]]
        (val if u % 2 else test).extend((f"u{u:02d}", f"t{i:02d}") for i in items[5:])
    return split(train, val, test)


def cluster_vectors(noise=0.3, seed=0, dim=16):
    """Items 0..7 around one random centre, 8..15 around another (16 dims: with a handful
    of dims the ReLU tower of a random init can map every item to the same direction)."""
    rng = np.random.default_rng(seed)
    centres = np.repeat(rng.standard_normal((2, dim)), 8, axis=0)
    return (centres + noise * rng.standard_normal(centres.shape)).astype(np.float32)


def test_hinge_loss_by_hand():
    pos = torch.tensor([0.9, 0.1])
    neg = torch.tensor([[0.5, 0.8], [0.0, -0.5]])
    # margin 0.2: pair 0: max(0, .2-.9+.5)=0, max(0,.2-.9+.8)=.1 ; pair 1: .1, 0
    assert hinge_loss(pos, neg, 0.2).item() == pytest.approx(0.05)
    valid = torch.tensor([[True, True], [False, True]])
    assert hinge_loss(pos, neg, 0.2, valid).item() == pytest.approx(0.1 / 3)


@pytest.mark.parametrize("dense", [True, False])
def test_pair_dot_values_and_gradients_match_gather(monkeypatch, dense):
    monkeypatch.setattr(PairDot, "GATHER_COST", 10**9 if dense else 0)
    monkeypatch.setattr(PairDot, "CHUNK", 7)  # several forward chunks
    g = torch.Generator().manual_seed(0)
    left = torch.randn(9, 5, generator=g, dtype=torch.float64, requires_grad=True)
    right = torch.randn(4, 5, generator=g, dtype=torch.float64, requires_grad=True)
    rows = torch.randint(0, 9, (30,), generator=g)
    cols = torch.randint(0, 4, (30,), generator=g)
    weights = torch.randn(30, generator=g, dtype=torch.float64)
    out = pair_dot(left, right, rows, cols)
    ref = (left[rows] * right[cols]).sum(-1)
    torch.testing.assert_close(out, ref)
    ga = torch.autograd.grad((out * weights).sum(), (left, right))
    gb = torch.autograd.grad((ref * weights).sum(), (left, right))
    torch.testing.assert_close(ga, gb)


def test_negative_users_never_played_the_item():
    rng = np.random.default_rng(0)
    users = rng.integers(0, 50, 400)
    items = rng.integers(0, 37, 400)
    sampler = NegativeUserSampler(users, items, 50, 37)
    played = set(zip(users.tolist(), items.tolist(), strict=True))
    assert all(sampler.is_positive(np.array([u]), np.array([i]))[0] == ((u, i) in played) for u in range(50) for i in range(37))
    neg, valid = sampler.sample(items[:100], 20, rng)
    assert valid.all()
    assert not any((int(n), int(i)) in played for row, i in zip(neg, items[:100], strict=True) for n in row)


def test_item_played_by_everyone_leaves_slots_out_instead_of_using_listeners():
    users = np.array([0, 1, 2, 0])
    items = np.array([0, 0, 0, 1])
    neg, valid = NegativeUserSampler(users, items, 3, 2).sample(np.array([0, 1]), 4, np.random.default_rng(0))
    assert not valid[0].any()  # item 0: everyone played it
    assert valid[1].all() and set(neg[1].tolist()) <= {1, 2}


def test_user_table_starts_at_mean_of_train_items():
    data = two_taste_split()
    vectors = cluster_vectors()
    model = ShallowNet(data, vectors)
    items_u0 = data.train.indices[data.train.indptr[0] : data.train.indptr[1]]
    torch.testing.assert_close(model.user_table[0].detach(), torch.from_numpy(vectors[items_u0].mean(axis=0)))


def train_shallow(data, vectors, epochs=15, seed=0, checkpoint=None, on_epoch_end=None, **kwargs):
    torch.manual_seed(seed)
    model = ShallowNet(data, vectors, batch_size=16, n_negatives=5, **kwargs)
    settings = TrainSettings(epochs=epochs, patience=epochs, k=3)
    result = fit(model, data, settings, seed, checkpoint=checkpoint, fingerprint="f", on_epoch_end=on_epoch_end)
    return model, result


def hidden_taste_split(n_users=30, per_half=20, heard=8, noise=3.0, dim=16, seed=0):
    """Users of the first half listen only to items 0..19, the others to 20..39. The taste
    lives in two item dims of scale 2; 14 dims of noise with std 3 dominate the cosine, so
    raw-vector KNN confuses the halves while a learned tower can weigh the two dims up."""
    rng = np.random.default_rng(seed)
    train, val, test = [], [], []
    for u in range(n_users):
        half = np.arange(per_half) + (0 if u < n_users // 2 else per_half)
        items = rng.permutation(half)
        train += [(f"u{u:02d}", f"t{i:02d}") for i in items[:heard]]
        (val if u % 2 else test).extend((f"u{u:02d}", f"t{i:02d}") for i in items[heard:])
    vectors = noise * rng.standard_normal((2 * per_half, dim))
    vectors[:, 0] = np.repeat([2.0, -2.0], per_half)
    vectors[:, 1] = np.repeat([-2.0, 2.0], per_half)
    return split(train, val, test), vectors.astype(np.float32)


def wrong_half(data, factors, k=5):
    """Recommendations from the other taste half, over all users (the right answer: none)."""
    top = factors.rank(np.arange(data.n_users), data.train, k)
    half = data.n_users // 2
    return sum(len(set(row.tolist()) - set(range(0, 20) if u < half else range(20, 40))) for u, row in enumerate(top.items))


def test_learns_the_hidden_taste_dims_that_cosine_knn_misses_and_items_stay_frozen():
    from audiorec.models.knn import KNN

    data, vectors = hidden_taste_split()
    knn_wrong = wrong_half(data, KNN(data, vectors).factors())
    torch.manual_seed(0)
    model = ShallowNet(data, vectors, batch_size=32, n_negatives=5)
    result = fit(model, data, TrainSettings(epochs=30, patience=30, k=5), seed=0)
    shallow_wrong = wrong_half(data, model.factors())
    assert knn_wrong >= 15  # the noise dims fool the raw cosine
    assert shallow_wrong <= knn_wrong / 2
    assert result.best_value > result.history[0]["val_ndcg"] + 0.1
    assert result.history[-1]["loss"] < result.history[0]["loss"]
    # the pretrained item table is really frozen: bit-for-bit the input vectors
    torch.testing.assert_close(model.item_table.detach(), torch.from_numpy(vectors), rtol=0, atol=0)
    assert not model.item_table.requires_grad
    assert "items.table" not in model.saved_state()


def test_unfrozen_items_are_fine_tuned():
    data = two_taste_split()
    vectors = cluster_vectors()
    model, _ = train_shallow(data, vectors, epochs=2, freeze_items=False)
    assert model.item_table.requires_grad
    assert not torch.equal(model.item_table.detach(), torch.from_numpy(vectors))
    assert "items.table" in model.saved_state()


def test_deterministic_and_resume_equals_uninterrupted(tmp_path):
    data = two_taste_split()
    vectors = cluster_vectors()
    full, full_result = train_shallow(data, vectors, epochs=4)
    again, _ = train_shallow(data, vectors, epochs=4)
    for key, value in full.saved_state().items():
        torch.testing.assert_close(value, again.saved_state()[key], rtol=0, atol=0)

    class Crash(Exception):
        pass

    def crash_after_2(epoch):
        if epoch == 2:
            raise Crash

    ckpt = tmp_path / "checkpoint.pt"
    with pytest.raises(Crash):
        train_shallow(data, vectors, epochs=4, checkpoint=ckpt, on_epoch_end=crash_after_2)
    assert ckpt.exists()
    resumed, resumed_result = train_shallow(data, vectors, epochs=4, checkpoint=ckpt)
    assert resumed_result.resumed_from_epoch == 2
    for key, value in full.saved_state().items():
        torch.testing.assert_close(value, resumed.saved_state()[key], rtol=0, atol=0)
    assert [r["loss"] for r in resumed_result.history] == [r["loss"] for r in full_result.history]

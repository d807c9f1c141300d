"""BERT4Rec: masked-position loss, sequence windows, a known next item, frozen items, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _tiny_split import one_thread, sequences_split  # noqa: F401 (autouse fixture)

from audiorec.models.bert4rec import IGNORE, Bert4Rec
from audiorec.models.pop import Popularity
from audiorec.models.training import TrainSettings, evaluate_part, fit


def cycle_split(n_users=60, n_items=30, seed=0):
    """Items 0..29 in a ring; each user heard a run of 6-12 consecutive items and their
    held-out item is the next one on the ring: the right answer is known and unheard."""
    rng = np.random.default_rng(seed)
    seqs, val, test = {}, {}, {}
    for u in range(n_users):
        start, length = rng.integers(0, n_items), rng.integers(6, 13)
        run = [(start + j) % n_items for j in range(length + 1)]
        seqs[f"u{u:02d}"] = [f"t{i:02d}" for i in run[:-1]]
        (val if u % 2 else test)[f"u{u:02d}"] = [f"t{run[-1]:02d}"]
    return sequences_split(seqs, val, test)


def small_model(data, vectors=None, **kwargs):
    args = dict(hidden_size=32, n_heads=2, inner_size=64, n_layers=1, batch_size=8, max_len=20, dropout=0.0, mask_prob=0.3)
    return Bert4Rec(data, vectors, **{**args, **kwargs})


def test_masked_position_loss_equals_full_computation():
    data = cycle_split()
    torch.manual_seed(0)
    model = small_model(data, dropout=0.1, output_bias=True)
    with torch.no_grad():
        model.bias.normal_()
    model.eval()
    tokens = model.sequences(np.arange(16), append_mask=False)
    inputs, labels = model.mask_batch(tokens, np.random.default_rng(0))
    inputs, labels = torch.as_tensor(inputs), torch.as_tensor(labels)
    assert (labels != IGNORE).sum() > 10 and (labels == IGNORE).sum() > 10
    gathered = model.masked_loss(inputs, labels, gather=True)
    full = model.masked_loss(inputs, labels, gather=False)
    torch.testing.assert_close(gathered, full, rtol=1e-6, atol=1e-6)
    # and against a hand-written cross entropy over the masked positions only
    hidden = model.encode(inputs, model.item_matrix())
    logits = hidden @ model.item_matrix().T + model.bias
    where = labels != IGNORE
    manual = -torch.log_softmax(logits[where], dim=-1).gather(1, labels[where][:, None]).mean()
    torch.testing.assert_close(gathered, manual, rtol=1e-5, atol=1e-6)


def test_sequences_are_right_aligned_windows_of_max_len_with_the_mask_last():
    long = [f"t{i:03d}" for i in range(400)]
    data = sequences_split({"a": long, "b": ["t001", "t000"]}, val={"a": ["t399"]})
    model = Bert4Rec(data, None, hidden_size=8, max_len=300)
    train_tokens = model.sequences(np.array([0, 1]), append_mask=False)
    assert train_tokens.shape == (2, 300)
    assert train_tokens[0].tolist() == list(range(100, 400))  # the latest 300 items
    assert train_tokens[1, :-2].tolist() == [model.pad] * 298 and train_tokens[1, -2:].tolist() == [1, 0]
    predict_tokens = model.sequences(np.array([0, 1]), append_mask=True)
    assert predict_tokens.shape == (2, 300)  # 299 items + the mask: max length 300 in prediction too
    assert predict_tokens[0, :-1].tolist() == list(range(101, 400)) and predict_tokens[0, -1] == model.mask
    assert predict_tokens[1, -3:].tolist() == [1, 0, model.mask]


def test_predicts_the_next_item_on_the_ring():
    data = cycle_split()
    torch.manual_seed(0)
    model = small_model(data)
    result = fit(model, data, TrainSettings(epochs=40, patience=40, lr=1e-2, k=1), seed=0)
    test = evaluate_part(model, data, data.parts["test"], 1)
    pop = evaluate_part(Popularity(data), data, data.parts["test"], 1)
    assert test["hitrate"] >= 0.7, result.history
    assert pop["hitrate"] < 0.2
    assert result.history[-1]["loss"] < result.history[0]["loss"]


def test_pretrained_items_are_frozen_and_projected():
    data = cycle_split(n_users=20)
    vectors = np.random.default_rng(0).standard_normal((data.n_items, 12)).astype(np.float32)
    torch.manual_seed(0)
    model = small_model(data, vectors, hidden_size=None, n_heads=3)
    assert model.item_matrix().shape == (data.n_items, 12)  # hidden_size None: the vectors' width
    projection_before = model.projection.weight.detach().clone()
    fit(model, data, TrainSettings(epochs=2, k=5), seed=0)
    torch.testing.assert_close(model.item_table.detach(), torch.from_numpy(vectors), rtol=0, atol=0)
    assert not torch.equal(model.projection.weight.detach(), projection_before)
    assert "items.table" not in model.saved_state()

    torch.manual_seed(0)
    tuned = small_model(data, vectors, freeze_items=False)
    fit(tuned, data, TrainSettings(epochs=2, k=5), seed=0)
    assert not torch.equal(tuned.item_table.detach(), torch.from_numpy(vectors))


def test_hidden_size_must_divide_heads():
    data = cycle_split(n_users=4)
    with pytest.raises(ValueError, match="n_heads"):
        small_model(data, hidden_size=30, n_heads=4)


def test_deterministic_and_resume_equals_uninterrupted(tmp_path):
    data = cycle_split(n_users=24)

    def train(epochs=4, **kwargs):
        torch.manual_seed(0)
        model = small_model(data, dropout=0.1)  # dropout on: its RNG must be reproducible too
        return model, fit(model, data, TrainSettings(epochs=epochs, patience=epochs, k=5), seed=3, fingerprint="f", **kwargs)

    full, full_result = train()
    again, _ = train()
    ranked = [m.factors().rank(data.parts["val"].users, data.train, 5).items for m in (full, again)]
    np.testing.assert_array_equal(*ranked)

    def crash(epoch):
        if epoch == 2:
            raise KeyboardInterrupt

    ckpt = tmp_path / "checkpoint.pt"
    with pytest.raises(KeyboardInterrupt):
        train(checkpoint=ckpt, on_epoch_end=crash)
    resumed, resumed_result = train(checkpoint=ckpt)
    assert resumed_result.resumed_from_epoch == 2
    assert [r["loss"] for r in resumed_result.history] == [r["loss"] for r in full_result.history]
    for key, value in full.saved_state().items():
        torch.testing.assert_close(value, resumed.saved_state()[key], rtol=0, atol=0)


@pytest.mark.parametrize("with_bias", [False, True])
def test_fused_linear_cross_entropy_matches_plain_loss_and_gradients(monkeypatch, with_bias):
    from audiorec.models import losses

    monkeypatch.setattr(losses, "CHUNK_CELLS", 7 * 11)  # several chunks of 7 rows
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(30, 5, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(11, 5, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(11, generator=g, dtype=torch.float64, requires_grad=True) if with_bias else None
    targets = torch.randint(0, 11, (30,), generator=g)
    fused = losses.linear_cross_entropy(hidden, weight, targets, bias)
    logits = hidden @ weight.T + (bias if with_bias else 0)
    plain = torch.nn.functional.cross_entropy(logits, targets)
    torch.testing.assert_close(fused.double(), plain, rtol=1e-6, atol=1e-6)
    inputs = (hidden, weight, bias) if with_bias else (hidden, weight)
    torch.testing.assert_close(torch.autograd.grad(3 * fused, inputs), torch.autograd.grad(3 * plain, inputs), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("with_bias", [False, True])
def test_fused_loss_with_several_targets_per_row_equals_the_rows_repeated(monkeypatch, with_bias):
    """[rows, k] targets (IGNORE where absent): one softmax per row, the same loss and gradients
    as plain cross entropy over the rows repeated once per present target (SASRec's
    `targets_ahead`)."""
    from audiorec.models import losses

    monkeypatch.setattr(losses, "CHUNK_CELLS", 7 * 11)
    g = torch.Generator().manual_seed(1)
    hidden = torch.randn(30, 5, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(11, 5, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(11, generator=g, dtype=torch.float64, requires_grad=True) if with_bias else None
    targets = torch.randint(0, 11, (30, 4), generator=g)
    targets[torch.rand(30, 4, generator=g) < 0.4] = losses.IGNORE
    targets[:, 0] = torch.randint(0, 11, (30,), generator=g)  # every row keeps one
    targets[3, 2] = targets[3, 0]  # the same track twice in one row counts twice
    fused = losses.linear_cross_entropy(hidden, weight, targets, bias)
    rows, cols = (targets != losses.IGNORE).nonzero(as_tuple=True)
    logits = hidden[rows] @ weight.T + (bias if with_bias else 0)
    plain = torch.nn.functional.cross_entropy(logits, targets[rows, cols])
    torch.testing.assert_close(fused.double(), plain, rtol=1e-6, atol=1e-6)
    inputs = (hidden, weight, bias) if with_bias else (hidden, weight)
    torch.testing.assert_close(torch.autograd.grad(2 * fused, inputs), torch.autograd.grad(2 * plain, inputs), rtol=1e-5, atol=1e-6)
    empty_row = targets.clone()
    empty_row[5] = losses.IGNORE
    with pytest.raises(ValueError, match="every row needs at least one target"):
        losses.linear_cross_entropy(hidden, weight, empty_row, bias)


def test_bf16_loss_is_close_to_fp32():
    data = cycle_split()
    torch.manual_seed(0)
    model = small_model(data)
    model.eval()
    tokens = model.sequences(np.arange(16), append_mask=False)
    inputs, labels = (torch.as_tensor(x) for x in model.mask_batch(tokens, np.random.default_rng(0)))
    fp32 = model.masked_loss(inputs, labels)
    model.bf16 = True
    torch.testing.assert_close(model.masked_loss(inputs, labels), fp32, rtol=2e-2, atol=2e-2)

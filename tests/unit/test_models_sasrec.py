"""SASRec: causal attention, padding, training and prediction positions, a known next item, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _tiny_split import one_thread, sequences_split  # noqa: F401 (autouse fixture)

from audiorec.models.pop import Popularity
from audiorec.models.sasrec import SASRec
from audiorec.models.sequential import IGNORE
from audiorec.models.training import TrainSettings, evaluate_part, fit
from test_models_bert4rec import cycle_split


def small_model(data, vectors=None, **kwargs):
    args = dict(hidden_size=16, n_heads=2, inner_size=32, n_layers=2, batch_size=8, max_len=12, dropout=0.0)
    return SASRec(data, vectors, **{**args, **kwargs})


def test_changing_a_later_item_leaves_every_earlier_output_unchanged():
    data = cycle_split()
    torch.manual_seed(0)
    model = small_model(data).eval()
    tokens = torch.as_tensor(model.sequences(np.arange(8)))
    assert (tokens != model.pad).all(axis=1).any()  # some rows without padding
    items = model.item_matrix().detach()
    base = model.encode(tokens, items)
    for t in range(tokens.shape[1] - 1):
        changed = tokens.clone()
        changed[:, t + 1] = (changed[:, t + 1] + 7) % data.n_items
        out = model.encode(changed, items)
        torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1], rtol=0, atol=0)
        assert not torch.allclose(out[:, t + 1 :], base[:, t + 1 :])


def test_padding_never_attends():
    """Real positions read nothing from padding: changing the pad vector (and the tokens'
    count of padding in front of a sequence) leaves every real output unchanged."""
    data = cycle_split()
    torch.manual_seed(0)
    model = small_model(data, max_len=20).eval()
    tokens = torch.as_tensor(model.sequences(np.arange(data.n_users)))
    real = tokens != model.pad
    assert (~real).any()
    items = model.item_matrix().detach()
    base = model.encode(tokens, items)
    assert torch.isfinite(base).all()
    with torch.no_grad():
        model.special.normal_()
    torch.testing.assert_close(model.encode(tokens, items)[real], base[real], rtol=1e-6, atol=1e-6)
    # one more column of padding in front: the real positions see the same thing
    wider = torch.cat([torch.full((tokens.shape[0], 1), model.pad), tokens], dim=1)
    torch.testing.assert_close(model.encode(wider, items)[:, 1:][real], model.encode(tokens, items)[real], rtol=1e-5, atol=1e-6)


def test_training_and_prediction_use_the_same_positions():
    """A user's prediction input is exactly the training input of the same history with
    one more track: same tokens at the same (right-aligned) positions, and the last one is
    the position the next track is predicted from in both."""
    long = [f"t{i:03d}" for i in range(30)]
    data = sequences_split({"a": long[:-1], "b": long, "c": ["t000"]}, val={"a": ["t029"]})
    model = SASRec(data, None, hidden_size=8, max_len=12, dropout=0.0)
    predict = model.sequences(np.array([0]))
    inputs, labels = model.training_batch(np.array([1]))
    np.testing.assert_array_equal(predict, inputs)
    assert predict.shape == (1, 12) and predict[0].tolist() == list(range(17, 29))  # the latest 12 of a's 29
    assert labels[0].tolist() == list(range(18, 30))  # every position predicts the next track
    # a single track has nothing to predict; a short user's padding carries no label
    inputs_c, labels_c = model.training_batch(np.array([2, 1]))
    assert (labels_c[0] == IGNORE).all()
    torch.manual_seed(0)
    model.eval()
    with torch.no_grad():
        items = model.item_matrix()
        hidden = model.encode(torch.as_tensor(inputs), items)[:, -1]
        torch.testing.assert_close(model.user_vectors(np.array([0]), items), hidden, rtol=0, atol=0)


def test_loss_is_cross_entropy_at_every_real_position():
    data = cycle_split()
    torch.manual_seed(0)
    model = small_model(data, output_bias=True).eval()
    with torch.no_grad():
        model.bias.normal_()
    inputs, labels = (torch.as_tensor(x) for x in model.training_batch(np.arange(16)))
    where = labels != IGNORE
    assert where.sum() > 50
    hidden = model.encode(inputs, model.item_matrix())
    logits = hidden[where] @ model.item_matrix().T + model.bias
    manual = torch.nn.functional.cross_entropy(logits, labels[where])
    torch.testing.assert_close(model.loss(inputs, labels), manual, rtol=1e-5, atol=1e-6)


def test_predicts_the_next_item_on_the_ring():
    data = cycle_split()
    torch.manual_seed(0)
    model = small_model(data, n_layers=1)
    result = fit(model, data, TrainSettings(epochs=30, patience=30, lr=1e-2, k=1), seed=0)
    test = evaluate_part(model, data, data.parts["test"], 1)
    pop = evaluate_part(Popularity(data), data, data.parts["test"], 1)
    assert test["hitrate"] >= 0.8, result.history
    assert pop["hitrate"] < 0.2


def test_deterministic_and_resume_equals_uninterrupted(tmp_path):
    data = cycle_split(n_users=24)

    def train(epochs=3, **kwargs):
        torch.manual_seed(0)
        model = small_model(data, dropout=0.1)
        return model, fit(model, data, TrainSettings(epochs=epochs, patience=epochs, k=5), seed=3, fingerprint="f", **kwargs)

    full, full_result = train()

    def crash(epoch):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(checkpoint=tmp_path / "checkpoint.pt", on_epoch_end=crash)
    resumed, resumed_result = train(checkpoint=tmp_path / "checkpoint.pt")
    assert resumed_result.resumed_from_epoch == 2
    assert [r["loss"] for r in resumed_result.history] == [r["loss"] for r in full_result.history]
    for key, value in full.saved_state().items():
        torch.testing.assert_close(value, resumed.saved_state()[key], rtol=0, atol=0)


def test_bf16_loss_is_close_to_fp32():
    data = cycle_split()
    torch.manual_seed(0)
    model = small_model(data).eval()
    inputs, labels = (torch.as_tensor(x) for x in model.training_batch(np.arange(16)))
    fp32 = model.loss(inputs, labels)
    model.bf16 = True
    torch.testing.assert_close(model.loss(inputs, labels), fp32, rtol=2e-2, atol=2e-2)


def test_log_popularity_bias_init_starts_at_the_popularity_ranking():
    data = sequences_split({"a": ["t0", "t1", "t2"], "b": ["t0", "t1"], "c": ["t0", "t3"]}, val={"a": ["t3"]})
    torch.manual_seed(0)
    model = SASRec(data, None, hidden_size=8, max_len=4, output_bias=True, bias_init="log_popularity")
    logs = np.log1p([3.0, 2.0, 1.0, 1.0])  # listeners of t0..t3
    np.testing.assert_allclose(model.bias.detach().numpy(), logs - logs.mean(), rtol=1e-6)
    zero = SASRec(data, None, hidden_size=8, max_len=4, output_bias=True)
    assert not zero.bias.detach().any()
    with pytest.raises(ValueError, match="bias_init"):
        SASRec(data, None, hidden_size=8, max_len=4, output_bias=True, bias_init="pop")


def test_target_window_trains_only_the_latest_positions():
    """`target_window: W` keeps the labels of each training row's latest W positions and
    ignores the rest (hand-computed on a 29- and a 3-track user); the inputs and the default
    (every position) are unchanged."""
    long = [f"t{i:03d}" for i in range(30)]
    data = sequences_split({"a": long[:-1], "b": long[:3]}, val={"a": ["t029"]})
    every = SASRec(data, None, hidden_size=8, max_len=12, dropout=0.0)
    inputs, labels = every.training_batch(np.array([0, 1]))
    assert every.target_window is None
    assert labels[0].tolist() == list(range(17, 29))  # a: the latest 13 tracks shifted by one
    assert labels[1].tolist() == [IGNORE] * 10 + [1, 2]  # b: t000 -> t001 -> t002, padding ignored
    window = SASRec(data, None, hidden_size=8, max_len=12, dropout=0.0, target_window=3)
    inputs_w, labels_w = window.training_batch(np.array([0, 1]))
    np.testing.assert_array_equal(inputs_w, inputs)
    assert labels_w[0].tolist() == [IGNORE] * 9 + [26, 27, 28]
    assert labels_w[1].tolist() == [IGNORE] * 10 + [1, 2]  # fewer real targets than the window: all kept
    # a window at least as wide as the batch changes nothing
    wide = SASRec(data, None, hidden_size=8, max_len=12, dropout=0.0, target_window=12)
    np.testing.assert_array_equal(wide.training_batch(np.array([0, 1]))[1], labels)
    with pytest.raises(ValueError, match="target_window"):
        SASRec(data, None, hidden_size=8, max_len=12, target_window=0)


def test_targets_ahead_labels_the_next_tracks_and_the_loss_averages_them():
    """`targets_ahead: 3`: each position is labelled with the next three tracks (fewer near
    the end), hand-computed; the loss is the mean cross entropy over every (position, target)
    pair; `targets_ahead: 1` is the usual next-track labelling."""
    long = [f"t{i:03d}" for i in range(30)]
    data = sequences_split({"a": long[:-1], "b": long[:3]}, val={"a": ["t029"]})
    one = SASRec(data, None, hidden_size=8, max_len=12, dropout=0.0)
    torch.manual_seed(0)
    three = SASRec(data, None, hidden_size=8, max_len=12, dropout=0.0, targets_ahead=3, output_bias=True)
    inputs, labels = three.training_batch(np.array([0, 1]))
    inputs_1, labels_1 = one.training_batch(np.array([0, 1]))
    np.testing.assert_array_equal(inputs, inputs_1)
    np.testing.assert_array_equal(labels[..., 0], labels_1)
    assert labels.shape == (2, 12, 3)
    # a: inputs t016..t027; position j's k-th target is track 16 + j + k while it exists (<= t028)
    expected = [[16 + j + k if 16 + j + k <= 28 else IGNORE for k in (1, 2, 3)] for j in range(12)]
    assert labels[0].tolist() == expected
    # b: t000 -> (t001, t002), t001 -> (t002); padding in front carries nothing
    assert labels[1, :10].tolist() == [[IGNORE] * 3] * 10
    assert labels[1, 10:].tolist() == [[1, 2, IGNORE], [2, IGNORE, IGNORE]]
    three.eval()
    with torch.no_grad():
        three.bias.normal_()
    x, y = torch.as_tensor(inputs), torch.as_tensor(labels)
    hidden = three.encode(x, three.item_matrix())
    terms = [
        torch.nn.functional.cross_entropy(hidden[b, j] @ three.item_matrix().T + three.bias, y[b, j, k], reduction="none")
        for b in range(2) for j in range(12) for k in range(3) if y[b, j, k] != IGNORE
    ]
    assert len(terms) == 12 * 3 - 3 + 3
    torch.testing.assert_close(three.loss(x, y), torch.stack(terms).mean(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="targets_ahead"):
        SASRec(data, None, hidden_size=8, max_len=12, targets_ahead=0)

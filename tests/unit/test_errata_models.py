"""The models' erratum settings restore the published code's behaviour and differ from the fixed
behaviour exactly as described (README, "Deviations from the published reference code"):

- Shallow Net `erratum_inverted_freeze`: the item table learns and the user table stays frozen
  (fixed: items frozen bit for bit, users learn);
- Shallow Net `erratum_any_negatives`: negatives are uniform over all users, so listeners of the
  item are drawn as often as their share (fixed: never);
- BERT4Rec `erratum_predict_last_50`: only the latest 49 train tracks (+ the mask: 50 tokens)
  influence the prediction (fixed: the latest max_len - 1);
and `models/run.py` turns the config keys into those settings.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch
from _tiny_split import one_thread, sequences_split  # noqa: F401 (autouse fixture)
from test_models_shallow import cluster_vectors, two_taste_split

from audiorec.models.bert4rec import ERRATUM_PREDICT_LEN, Bert4Rec
from audiorec.models.run import build_model
from audiorec.models.shallow import NegativeUserSampler, ShallowNet
from audiorec.models.training import TrainSettings, fit

# ------------------------------------------------------------------------- Shallow Net: freeze


def _trained(data, vectors, **kwargs) -> tuple[ShallowNet, torch.Tensor]:
    torch.manual_seed(0)
    model = ShallowNet(data, vectors, batch_size=16, n_negatives=4, **kwargs)
    users_before = model.user_table.detach().clone()
    fit(model, data, TrainSettings(epochs=3, patience=10, lr=1e-2, k=5), seed=0)
    return model, users_before


def test_inverted_freeze_trains_items_and_freezes_users():
    data = two_taste_split()
    vectors = cluster_vectors()
    fixed, fixed_users = _trained(data, vectors)
    erratum, erratum_users = _trained(data, vectors, inverted_freeze=True)
    torch.testing.assert_close(fixed_users, erratum_users)  # same start
    # fixed: the pretrained items bit for bit, the users moved
    assert torch.equal(fixed.item_table.detach(), torch.from_numpy(vectors))
    assert not torch.equal(fixed.user_table.detach(), fixed_users)
    # erratum: the users bit for bit at their start (the mean of their tracks), the items moved
    assert torch.equal(erratum.user_table.detach(), erratum_users)
    assert not torch.equal(erratum.item_table.detach(), torch.from_numpy(vectors))
    # what model.pt keeps: the learned item table now, the frozen users too (not in any cache)
    assert not any(key.startswith("items.") for key in fixed.saved_state())
    assert {"items.table", "user_table"} <= set(erratum.saved_state())
    # the erratum overrides freeze_items: the published code's flags were inverted whatever it meant
    also, _ = _trained(data, vectors, inverted_freeze=True, freeze_items=False)
    assert not also.user_table.requires_grad and also.item_table.requires_grad


# --------------------------------------------------------------------- Shallow Net: negatives


def test_any_negatives_include_listeners_at_their_share():
    # user u played items 0..u (u = 0..9): item 0 by all 10 users, item 9 by one
    users = np.array([u for u in range(10) for _ in range(u + 1)])
    items = np.array([i for u in range(10) for i in range(u + 1)])
    fixed = NegativeUserSampler(users, items, n_users=10, n_items=10)
    erratum = NegativeUserSampler(users, items, n_users=10, n_items=10, any_user=True)
    query = np.repeat(np.arange(1, 10), 200)  # item i was played by users i..9
    rng_a, rng_b = np.random.default_rng(0), np.random.default_rng(0)
    neg_fixed, valid_fixed = fixed.sample(query, 20, rng_a)
    neg_any, valid_any = erratum.sample(query, 20, rng_b)
    listened = fixed.is_positive(neg_any, np.broadcast_to(query[:, None], neg_any.shape))
    assert valid_any.all()  # every slot counts, listeners included
    assert not fixed.is_positive(neg_fixed[valid_fixed], np.broadcast_to(query[:, None], neg_fixed.shape)[valid_fixed]).any()
    # uniform over all users: item i's listeners (10 - i of 10 users) are drawn at that share
    for i in (1, 5, 9):
        share = listened[query == i].mean()
        assert abs(share - (10 - i) / 10) < 0.03, (i, share)
    # the erratum's draws are the first uniform draw of the fixed sampler (no redraws)
    np.testing.assert_array_equal(neg_any, np.random.default_rng(0).integers(0, 10, size=neg_any.shape))


# ------------------------------------------------------------------------- BERT4Rec: last 50


def _bert(data, **kwargs) -> Bert4Rec:
    torch.manual_seed(0)
    model = Bert4Rec(data, None, hidden_size=16, n_heads=2, inner_size=32, n_layers=1, max_len=120, dropout=0.0, **kwargs)
    return model.eval()


def test_predict_last_50_only_sees_the_latest_49_tracks():
    tracks = [f"t{i:03d}" for i in range(100)]
    history = tracks[:90]  # 90 train tracks
    changed = ["t099"] + history[1:]  # the oldest track replaced
    recent = history[:-1] + ["t099"]  # the latest track replaced
    old = history[:40] + ["t099"] + history[41:]  # the 50th latest replaced
    data = sequences_split({"a": history, "b": changed, "c": recent, "d": old, "z": tracks}, val={})
    fixed = _bert(data)
    erratum = _bert(data, predict_len=ERRATUM_PREDICT_LEN)
    users = np.arange(4)
    tokens = erratum.sequences(users, append_mask=True)
    assert tokens.shape == (4, 50) and tokens[0, -1] == erratum.mask  # 49 tracks + the mask
    assert tokens[0, :-1].tolist() == [data.track_ids.index(t) for t in history[-49:]]
    assert fixed.sequences(users, append_mask=True).shape == (4, 91)  # all 90 (< max_len - 1)
    # training still sees max_len tracks either way
    assert erratum.sequences(users, append_mask=False).shape == fixed.sequences(users, append_mask=False).shape
    with torch.no_grad():
        bad, good = erratum.user_vectors(users), fixed.user_vectors(users)
    # erratum: the oldest track and the 50th latest have no influence, the latest has
    torch.testing.assert_close(bad[1], bad[0])
    torch.testing.assert_close(bad[3], bad[0])
    assert not torch.allclose(bad[2], bad[0], atol=1e-4)
    # fixed: all three change the prediction
    for user in (1, 2, 3):
        assert not torch.allclose(good[user], good[0], atol=1e-4), user


# ------------------------------------------------------------------------------- run.py keys


def test_config_keys_reach_the_models():
    data = two_taste_split()
    vectors = SimpleNamespace(vectors=cluster_vectors())  # build_model reads only `.vectors`
    shallow = build_model(
        {"type": "shallow", "erratum_inverted_freeze": True, "erratum_any_negatives": True}, "mfcc", data, vectors
    )
    assert shallow.item_table.requires_grad and not shallow.user_table.requires_grad and shallow.sampler.any_user
    plain = build_model({"type": "shallow"}, "mfcc", data, vectors)
    assert not plain.item_table.requires_grad and plain.user_table.requires_grad and not plain.sampler.any_user
    bert = build_model({"type": "bert4rec", "erratum_predict_last_50": True, "hidden_size": 16}, "random", data, None)
    assert bert.predict_len == 50 and bert.max_len == 300
    assert build_model({"type": "bert4rec", "hidden_size": 16}, "random", data, None).predict_len == 300

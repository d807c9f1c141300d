"""LayerMix: starts at the mean over layers, and learns to pick the informative layer."""

from __future__ import annotations

import numpy as np
import torch

from audiorec.models.layer_mix import LayerMix


def test_starts_as_the_mean_and_indexes_items() -> None:
    layers = np.random.default_rng(0).standard_normal((5, 3, 4)).astype(np.float32)
    mix = LayerMix(layers)
    np.testing.assert_allclose(mix().detach().numpy(), layers.mean(axis=1), rtol=1e-6)
    np.testing.assert_allclose(mix(torch.tensor([4, 1])).detach().numpy(), layers[[4, 1]].mean(axis=1), rtol=1e-6)
    assert list(mix.parameters()) == [mix.logits]  # the layers are a frozen buffer


def test_learns_weight_on_the_layer_that_predicts_the_target() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    layers = rng.standard_normal((200, 3, 2)).astype(np.float32)
    target = torch.as_tensor(layers[:, 2, :])  # layer 2 is the answer
    mix = LayerMix(layers)
    opt = torch.optim.Adam(mix.parameters(), lr=0.1)
    for _ in range(200):
        opt.zero_grad()
        loss = ((mix() - target) ** 2).mean()
        loss.backward()
        opt.step()
    weights = mix.report(["a", "b", "c"])
    assert weights["c"] > 0.9 and abs(sum(weights.values()) - 1) < 1e-6

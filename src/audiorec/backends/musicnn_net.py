"""The musicnn network (Pons & Serra, 2019) as a torch module, and the mapping from its
TensorFlow checkpoint variables to this module's parameters.

Mirrors `build_musicnn` of musicnn/models.py (v0.1.0) for inference: a scalar batch norm of
the input; a musically motivated front end (two timbral convolutions spanning 38 and 67 of
the 96 mel bands, three temporal convolutions of 128/64/32 frames per band, each
conv -> ReLU -> batch norm -> max over frequency); a dense mid end of three time
convolutions with residual connections; a back end pooling time (max and mean), batch norm,
dense 200 + ReLU + batch norm (the "penultimate" features) and a dense layer to 50 tag logits.
MTT_musicnn and MSD_musicnn share this shape (mid end 64 filters, 200 units).

Layout notes that the checkpoint mapping depends on:
* TF conv kernels are [kh, kw, in, out] with kh = time; torch's are [out, in, kh, kw].
* TF's "same" padding of an even kernel k pads (k-1)//2 before and k//2 after.
* The back end flattens concat([max, mean], axis=2) of [B, 753, 1] tensors, so the 1506
  inputs of its batch norm and dense layer interleave max and mean per feature (2c, 2c+1).
* All batch norms are tf.compat.v1.layers.batch_normalization: epsilon 1e-3.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

TF_BN_EPS = 1e-3
N_MELS = 96
PATCH_FRAMES = 187


@dataclass(frozen=True)
class MusiCNNConfig:
    n_mels: int = N_MELS
    timbral_filters: int = 204  # int(1.6 * 128)
    temporal_filters: int = 51  # int(1.6 * 32)
    timbral_widths: tuple[int, int] = (38, 67)  # int(0.4 * 96), int(0.7 * 96)
    temporal_lengths: tuple[int, int, int] = (128, 64, 32)
    midend_filters: int = 64
    backend_units: int = 200
    n_classes: int = 50

    @property
    def frontend_dim(self) -> int:
        return 2 * self.timbral_filters + 3 * self.temporal_filters

    @property
    def pool_dim(self) -> int:
        return self.frontend_dim + 3 * self.midend_filters


#: musicnn variants this port supports (MSD_musicnn_big was never released in the wheel)
VARIANTS: dict[str, MusiCNNConfig] = {
    "MSD_musicnn": MusiCNNConfig(),
    "MTT_musicnn": MusiCNNConfig(),
}


def _bn(num: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(num, eps=TF_BN_EPS)


class MusiCNN(nn.Module):
    """patches [P, 187, 96] log-mel -> dict of mean_pool, max_pool [P, 753], penultimate [P, 200], logits [P, 50]."""

    def __init__(self, cfg: MusiCNNConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or MusiCNNConfig()
        self.input_bn = _bn(1)
        self.timbral = nn.ModuleList(
            nn.Conv2d(1, cfg.timbral_filters, kernel_size=(7, w)) for w in cfg.timbral_widths
        )
        self.timbral_bn = nn.ModuleList(_bn(cfg.timbral_filters) for _ in cfg.timbral_widths)
        self.temporal = nn.ModuleList(
            nn.Conv2d(1, cfg.temporal_filters, kernel_size=(k, 1)) for k in cfg.temporal_lengths
        )
        self.temporal_bn = nn.ModuleList(_bn(cfg.temporal_filters) for _ in cfg.temporal_lengths)
        m = cfg.midend_filters
        self.midend = nn.ModuleList(
            [nn.Conv1d(cfg.frontend_dim, m, kernel_size=7, padding=3)]
            + [nn.Conv1d(m, m, kernel_size=7, padding=3) for _ in range(2)]
        )
        self.midend_bn = nn.ModuleList(_bn(m) for _ in range(3))
        self.pool_bn = _bn(2 * cfg.pool_dim)
        self.dense = nn.Linear(2 * cfg.pool_dim, cfg.backend_units)
        self.dense_bn = _bn(cfg.backend_units)
        self.output = nn.Linear(cfg.backend_units, cfg.n_classes)

    @staticmethod
    def _affine(bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
        """The inference-time batch norm as y = a * x + b."""
        a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        return a, bn.bias - a * bn.running_mean

    def _max_over_freq(self, conv: torch.Tensor, bn: nn.BatchNorm1d) -> torch.Tensor:
        """max_f BN(ReLU(conv)) for conv [P, C, T, F] -> [P, C, T].

        ReLU is increasing and the batch norm is a per-channel affine map, increasing where
        its scale is positive and decreasing where negative, so the maximum over frequency
        is taken on the raw convolution (max, or min for negative scales) before both:
        exact, and it avoids two passes over the largest tensor of the network.
        """
        a, b = self._affine(bn)
        neg = a < 0
        peak = conv.amax(dim=3)
        if bool(neg.any()):
            peak = torch.where(neg[None, :, None], conv.amin(dim=3), peak)
        return F.relu(peak) * a[None, :, None] + b[None, :, None]

    def frontend(self, x: torch.Tensor) -> torch.Tensor:
        """[P, T, F] -> [P, 561, T]: timbral then temporal features, channels first."""
        a, b = self._affine(self.input_bn)
        x = (x * a + b).unsqueeze(1)  # [P, 1, T, F]
        feats = []
        padded = F.pad(x, (0, 0, 3, 3))  # pad time only, 'valid' over frequency
        for conv, bn in zip(self.timbral, self.timbral_bn, strict=True):
            feats.append(self._max_over_freq(conv(padded), bn))
        for conv, bn in zip(self.temporal, self.temporal_bn, strict=True):
            k = conv.kernel_size[0]
            feats.append(self._max_over_freq(conv(F.pad(x, (0, 0, (k - 1) // 2, k // 2))), bn))
        return torch.cat(feats, dim=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        front = self.frontend(x)
        a, b = self._affine(self.midend_bn[0])
        h1 = F.relu(self.midend[0](front)) * a[:, None] + b[:, None]
        a, b = self._affine(self.midend_bn[1])
        h2 = F.relu(self.midend[1](h1)) * a[:, None] + b[:, None] + h1
        a, b = self._affine(self.midend_bn[2])
        h3 = F.relu(self.midend[2](h2)) * a[:, None] + b[:, None] + h2
        feats = torch.cat([front, h1, h2, h3], dim=1)  # [P, 753, T]
        max_pool = feats.amax(dim=2)
        mean_pool = feats.mean(dim=2)
        flat = torch.stack([max_pool, mean_pool], dim=2).flatten(1)  # TF's interleaved flatten
        flat = self.pool_bn(flat)
        penultimate = self.dense_bn(F.relu(self.dense(flat)))
        logits = self.output(penultimate)
        return {"mean_pool": mean_pool, "max_pool": max_pool, "penultimate": penultimate, "logits": logits}


# --------------------------------------------------------------------------- checkpoint mapping

#: checkpoint variables that are optimiser state, not model weights
OPTIMIZER_SUFFIXES = ("/Adam", "/Adam_1")
OPTIMIZER_NAMES = ("beta1_power", "beta2_power")


def is_optimizer_state(name: str) -> bool:
    return name in OPTIMIZER_NAMES or name.endswith(OPTIMIZER_SUFFIXES)


def checkpoint_mapping(cfg: MusiCNNConfig | None = None) -> dict[str, tuple[str, str]]:
    """TF variable -> (torch parameter/buffer name, layout) for every weight of the model.

    TF v1 layers are named by creation order (conv2d, conv2d_1, ...; batch_normalization,
    batch_normalization_1, ...), which build_musicnn fixes: input BN; timbral 38, 67;
    temporal 128, 64, 32; mid-end 1..3; pooled BN; dense; dense BN; output dense.
    layout is how to turn the TF array into torch's: "conv2d", "conv1d", "dense" or "vector".
    """
    cfg = cfg or MusiCNNConfig()
    bn_modules = (
        ["input_bn"]
        + [f"timbral_bn.{i}" for i in range(len(cfg.timbral_widths))]
        + [f"temporal_bn.{i}" for i in range(len(cfg.temporal_lengths))]
        + [f"midend_bn.{i}" for i in range(3)]
        + ["pool_bn", "dense_bn"]
    )
    conv_modules = (
        [(f"timbral.{i}", "conv2d") for i in range(len(cfg.timbral_widths))]
        + [(f"temporal.{i}", "conv2d") for i in range(len(cfg.temporal_lengths))]
        + [(f"midend.{i}", "conv1d") for i in range(3)]
    )
    mapping: dict[str, tuple[str, str]] = {}
    for i, module in enumerate(bn_modules):
        tf = "batch_normalization" + (f"_{i}" if i else "")
        for tf_name, torch_name in (
            ("gamma", "weight"),
            ("beta", "bias"),
            ("moving_mean", "running_mean"),
            ("moving_variance", "running_var"),
        ):
            mapping[f"{tf}/{tf_name}"] = (f"{module}.{torch_name}", "vector")
    for i, (module, layout) in enumerate(conv_modules):
        tf = "conv2d" + (f"_{i}" if i else "")
        mapping[f"{tf}/kernel"] = (f"{module}.weight", layout)
        mapping[f"{tf}/bias"] = (f"{module}.bias", "vector")
    for tf, module in (("dense", "dense"), ("dense_1", "output")):
        mapping[f"{tf}/kernel"] = (f"{module}.weight", "dense")
        mapping[f"{tf}/bias"] = (f"{module}.bias", "vector")
    return mapping


def convert_tf_array(array: np.ndarray, layout: str) -> np.ndarray:
    if layout == "conv2d":  # [kh, kw, in, out] -> [out, in, kh, kw]
        return array.transpose(3, 2, 0, 1)
    if layout == "conv1d":  # [k, width, 1, out] conv over the whole width -> Conv1d [out, width, k]
        return array[:, :, 0, :].transpose(2, 1, 0)
    if layout == "dense":  # [in, out] -> Linear [out, in]
        return array.T
    if layout == "vector":
        return array
    raise ValueError(f"unknown layout {layout!r}")


class CheckpointMismatchError(ValueError):
    """The checkpoint does not hold exactly the weights of this network."""


def state_dict_from_checkpoint(
    tensors: Mapping[str, np.ndarray], cfg: MusiCNNConfig | None = None
) -> dict[str, torch.Tensor]:
    """A complete state dict for `MusiCNN(cfg)` from the checkpoint's variables.

    Strict both ways: every model weight must come from the checkpoint with the right shape,
    and every checkpoint variable must be either used or optimiser state, so that a wrong
    variant or a changed layer order fails loudly instead of loading half a model.
    """
    cfg = cfg or MusiCNNConfig()
    mapping = checkpoint_mapping(cfg)
    model_tensors = {k: v for k, v in tensors.items() if not is_optimizer_state(k)}
    missing = sorted(set(mapping) - set(model_tensors))
    unused = sorted(set(model_tensors) - set(mapping))
    if missing or unused:
        raise CheckpointMismatchError(
            f"checkpoint does not match the musicnn network: missing {missing}, unexpected {unused}"
        )
    expected = {k: v.shape for k, v in MusiCNN(cfg).state_dict().items() if not k.endswith("num_batches_tracked")}
    state: dict[str, torch.Tensor] = {}
    for tf_name, (torch_name, layout) in mapping.items():
        array = convert_tf_array(np.asarray(model_tensors[tf_name], dtype=np.float32), layout)
        if tuple(array.shape) != tuple(expected[torch_name]):
            raise CheckpointMismatchError(
                f"checkpoint variable {tf_name} {tuple(model_tensors[tf_name].shape)} does not fit "
                f"{torch_name} {tuple(expected[torch_name])}"
            )
        state[torch_name] = torch.from_numpy(np.ascontiguousarray(array))
    for name in MusiCNN(cfg).state_dict():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(0, dtype=torch.long)
    return state

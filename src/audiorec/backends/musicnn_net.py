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
from typing import Any

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


#: output frames per row of the banded temporal GEMM (fastest of 8/16/32 on AVX-512)
TEMPORAL_BLOCK = 8


def banded_matrix(kernel: torch.Tensor, block: int) -> torch.Tensor:
    """[block + k - 1, block * C]: column (t, c) holds kernel[:, c] starting at row t."""
    k, channels = kernel.shape
    band = kernel.new_zeros(block + k - 1, block, channels)
    for t in range(block):
        band[t : t + k, t] = kernel
    return band.reshape(block + k - 1, block * channels)


def banded_time_conv(
    x: torch.Tensor, kernel: torch.Tensor, pad_before: int, block: int, band: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-correlate every row of x [N, T] with each column of kernel [k, C], zero padding
    `pad_before` in front and the rest behind (TF 'same': (k-1)//2 before): [N, T, C].

    Computed as windows [N * T/block, block + k - 1] @ banded [block + k - 1, block * C]."""
    k, channels = kernel.shape
    rows, length = x.shape
    n_blocks = -(-length // block)
    if band is None:
        band = banded_matrix(kernel, block)
    padded = F.pad(x, (pad_before, n_blocks * block + k - 1 - pad_before - length))
    windows = padded.unfold(1, block + k - 1, block).reshape(rows * n_blocks, block + k - 1)
    return torch.mm(windows, band).reshape(rows, n_blocks * block, channels)[:, :length]


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
        self._folded: dict[str, Any] | None = None

    # --- inference constants -------------------------------------------------------------

    @staticmethod
    def _affine(bn: nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
        """The inference-time batch norm as y = a * x + b."""
        a = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        return a, bn.bias - a * bn.running_mean

    def _branch_constants(self, conv: nn.Conv2d, bn: nn.BatchNorm1d) -> dict[str, torch.Tensor]:
        """Kernel and bias with the sign of each channel's batch-norm scale folded in.

        A front-end branch is max_f BN(ReLU(conv)). ReLU is increasing and the inference batch
        norm is a per-channel affine map a*x + b, increasing where a > 0 and decreasing where
        a < 0; there the maximum is a * ReLU(min_f conv) + b, and min_f conv = -max_f(-conv).
        Negating those channels' kernels turns every branch into one max over frequency of
        the raw convolution (bias added after it), with ReLU and batch norm applied to the
        small pooled tensor: exact, and it saves several passes over the largest tensors.
        """
        a, b = self._affine(bn)
        sign = torch.where(a < 0, -1.0, 1.0).to(a.dtype)
        assert conv.bias is not None
        return {"weight": conv.weight * sign[:, None, None, None], "bias": conv.bias * sign, "sign": sign, "a": a, "b": b}

    def _constants(self) -> dict[str, Any]:
        c: dict[str, Any] = {"input": self._affine(self.input_bn)}
        c["timbral"] = [self._branch_constants(conv, bn) for conv, bn in zip(self.timbral, self.timbral_bn, strict=True)]
        c["temporal"] = []
        for conv, bn in zip(self.temporal, self.temporal_bn, strict=True):
            t = self._branch_constants(conv, bn)
            t["band"] = banded_matrix(t["weight"][:, 0, :, 0].T, TEMPORAL_BLOCK)
            c["temporal"].append(t)
        c["midend"] = [self._affine(bn) for bn in self.midend_bn]
        return c

    def fold(self) -> MusiCNN:
        """Precompute the inference constants once (batch-norm affines, sign-folded kernels,
        banded matrices) instead of on every forward pass. Cleared by load_state_dict and
        .to(); call again after changing weights in place."""
        with torch.no_grad():
            self._folded = self._constants()
        return self

    def _apply(self, *args: Any, **kwargs: Any) -> MusiCNN:
        self._folded = None
        return super()._apply(*args, **kwargs)

    def load_state_dict(self, *args: Any, **kwargs: Any) -> Any:
        self._folded = None
        return super().load_state_dict(*args, **kwargs)

    def constants(self) -> dict[str, Any]:
        return self._folded if self._folded is not None else self._constants()

    # --- the network -----------------------------------------------------------------------

    @staticmethod
    def _finish(peak: torch.Tensor, c: dict[str, torch.Tensor]) -> torch.Tensor:
        """[P, C, T] max over frequency of the sign-folded conv (without bias) -> branch output."""
        extreme = (peak + c["bias"][:, None]) * c["sign"][:, None]
        return torch.addcmul(c["b"][:, None], F.relu(extreme), c["a"][:, None])

    def timbral_branch(self, padded: torch.Tensor, i: int, consts: dict[str, Any] | None = None) -> torch.Tensor:
        """padded [P, 1, T+6, F] -> [P, C, T]: conv (7 x w) 'valid', max over frequency."""
        c = (consts or self.constants())["timbral"][i]
        return self._finish(F.conv2d(padded, c["weight"]).amax(dim=3), c)

    def temporal_branch(
        self, bands: torch.Tensor, i: int, n_patches: int, consts: dict[str, Any] | None = None
    ) -> torch.Tensor:
        """bands [P*F, T] (one row per patch and mel band) -> [P, C, T]: conv (k x 1) 'same', max over frequency.

        A one-channel time convolution is a poor fit for oneDNN's direct convolution, so it
        runs as one GEMM against a banded (Toeplitz) matrix that computes `block` outputs per
        row from a window of block + k - 1 samples.
        """
        c = (consts or self.constants())["temporal"][i]
        k = self.temporal[i].kernel_size[0]
        rows, length = bands.shape
        kernel = c["weight"][:, 0, :, 0].T
        out = banded_time_conv(bands, kernel, (k - 1) // 2, TEMPORAL_BLOCK, c["band"])  # [P*F, T, C]
        peak = out.reshape(n_patches, rows // n_patches, length, -1).amax(dim=1)  # [P, T, C]
        return self._finish(peak.transpose(1, 2), c)

    def frontend(self, x: torch.Tensor, consts: dict[str, Any] | None = None) -> torch.Tensor:
        """[P, T, F] -> [P, 561, T]: timbral then temporal features, channels first."""
        consts = consts or self.constants()
        a, b = consts["input"]
        x = x * a + b
        padded = F.pad(x.unsqueeze(1), (0, 0, 3, 3))  # pad time only, 'valid' over frequency
        feats = [self.timbral_branch(padded, i, consts) for i in range(len(self.timbral))]
        bands = x.transpose(1, 2).reshape(-1, x.shape[1])  # [P*F, T]
        feats += [self.temporal_branch(bands, i, x.shape[0], consts) for i in range(len(self.temporal))]
        return torch.cat(feats, dim=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        consts = self.constants()
        front = self.frontend(x, consts)
        hidden = [front]
        h = front
        for i, (conv, (a, b)) in enumerate(zip(self.midend, consts["midend"], strict=True)):
            y = torch.addcmul(b[:, None], F.relu(conv(h)), a[:, None])
            h = y if i == 0 else y + h  # residual connections from the second layer on
            hidden.append(h)
        feats = torch.cat(hidden, dim=1)  # [P, 753, T]
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

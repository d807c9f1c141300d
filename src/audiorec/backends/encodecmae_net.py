"""EncodecMAE (Pepino, Riera & Ferrer, 2023; habla-liaa/encodecmae v1, MIT licence), the
inference path of the published `lpepino/encodecmae-{small,base,large,base-st,large-st}`
checkpoints, rebuilt without the upstream package (not on PyPI; it needs gin, ginpipe,
pytorch_lightning and EnCodec, whose torchaudio dependency the workflow avoids).

The module names mirror upstream, so `model.pt`'s state dict loads by its own keys:
`wav_encoder.model.model.*` is EnCodec's 24 kHz SEANet encoder (causal, weight-normed convs,
2-layer LSTM; 75 frames/s, 128 dims), `feat_projector` maps it to the model width, a sinusoidal
positional encoding with a learned scale is added, and `visible_encoder` is a stack of ResiDual
transformer layers (Xie et al. 2023) with bias-free attention whose heads interleave the
feature axis ([head_dim, heads], as upstream reshapes) and one feed-forward block *shared by
all layers* (upstream builds it once and hands it to every layer). The MAE decoder, target
quantiser and heads are training-only and not built.

Padding: the SEANet encoder is causal and its LSTM unidirectional, so a valid frame never sees
the zeros after its clip; attention masks padded keys with upstream's -1e9. A padded batch
therefore equals lone runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

SAMPLE_RATE = 24000
HOP_LENGTH = 320  # 2 * 4 * 5 * 8
ENCODEC_DIM = 128


# --- EnCodec's SEANet encoder (encodec 0.1.1, 24 kHz model: causal, weight norm, reflect pad) ---


def _extra_padding(length: int, kernel: int, stride: int, padding_total: int) -> int:
    n_frames = (length - kernel + padding_total) / stride + 1
    ideal = (math.ceil(n_frames) - 1) * stride + (kernel - padding_total)
    return ideal - length


def _pad1d(x: torch.Tensor, left: int, right: int) -> torch.Tensor:
    """Reflect padding that, like encodec's pad1d, zero-extends inputs too short to reflect."""
    length = x.shape[-1]
    extra = 0
    if length <= max(left, right):
        extra = max(left, right) - length + 1
        x = nn.functional.pad(x, (0, extra))
    padded = nn.functional.pad(x, (left, right), mode="reflect")
    return padded[..., : padded.shape[-1] - extra]


class NormConv1d(nn.Module):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.conv = weight_norm(nn.Conv1d(*args, **kwargs))
        self.norm = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class SConv1d(nn.Module):
    """Causal conv: all padding on the left, plus what completes the last frame on the right."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv = NormConv1d(cin, cout, kernel, stride, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.conv.conv
        kernel, stride, dilation = conv.kernel_size[0], conv.stride[0], conv.dilation[0]
        padding_total = (kernel - 1) * dilation - (stride - 1)
        extra = _extra_padding(x.shape[-1], kernel, stride, padding_total)
        return self.conv(_pad1d(x, padding_total, extra))


class SEANetResnetBlock(nn.Module):
    def __init__(self, dim: int, dilation: int, compress: int = 2) -> None:
        super().__init__()
        hidden = dim // compress
        self.block = nn.Sequential(
            nn.ELU(alpha=1.0), SConv1d(dim, hidden, 3, dilation=dilation), nn.ELU(alpha=1.0), SConv1d(hidden, dim, 1)
        )
        self.shortcut = SConv1d(dim, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.block(x)


class SLSTM(nn.Module):
    def __init__(self, dim: int, num_layers: int = 2) -> None:
        super().__init__()
        self.lstm = nn.LSTM(dim, dim, num_layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(2, 0, 1)
        y, _ = self.lstm(x)
        return (y + x).permute(1, 2, 0)


class SEANetEncoder(nn.Module):
    def __init__(self, dimension: int = ENCODEC_DIM, n_filters: int = 32, ratios: tuple[int, ...] = (8, 5, 4, 2)) -> None:
        super().__init__()
        layers: list[nn.Module] = [SConv1d(1, n_filters, 7)]
        mult = 1
        for ratio in reversed(ratios):
            layers += [
                SEANetResnetBlock(mult * n_filters, dilation=1),
                nn.ELU(alpha=1.0),
                SConv1d(mult * n_filters, mult * n_filters * 2, ratio * 2, stride=ratio),
            ]
            mult *= 2
        layers += [SLSTM(mult * n_filters, 2), nn.ELU(alpha=1.0), SConv1d(mult * n_filters, dimension, 7)]
        self.model = nn.Sequential(*layers)
        self.hop_length = int(math.prod(ratios))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class EncodecEncoder(nn.Module):
    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.model = SEANetEncoder()
        self.scale = scale

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """[B, T] -> [B, T', 128]"""
        return self.model(wave[:, None]).permute(0, 2, 1) * self.scale


# --- the MAE's visible encoder ---


class SinusoidalPositionalEmbeddings(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pe = torch.zeros_like(x)
        position = torch.arange(0, pe.shape[1], device=x.device).unsqueeze(1).unsqueeze(0)
        div_term = torch.exp(
            torch.arange(0, pe.shape[2], 2, dtype=torch.float, device=x.device) * -(math.log(10000.0) / pe.shape[2])
        )
        pe[:, :, 0::2] = torch.sin(position.float() * div_term)
        pe[:, :, 1::2] = torch.cos(position.float() * div_term)
        return x + self.scale * pe


class MultiHeadAttention(nn.Module):
    def __init__(self, model_dim: int, num_heads: int, bias: Mapping[str, bool], mask_value: float = -1e9) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = model_dim // num_heads
        self.wq = nn.Linear(model_dim, model_dim, bias=bias.get("wq", False))
        self.wk = nn.Linear(model_dim, model_dim, bias=bias.get("wk", False))
        self.wv = nn.Linear(model_dim, model_dim, bias=bias.get("wv", False))
        self.wo = nn.Linear(model_dim, model_dim, bias=bias.get("wo", False))
        self.scale = self.head_dim**-0.5
        self.mask_value = mask_value

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        n, t, _ = x.shape  # upstream splits the features as [head_dim, heads]
        return x.view(n, t, self.head_dim, self.num_heads).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor, key_padding: torch.Tensor) -> torch.Tensor:
        n, t, _ = x.shape
        q, k, v = self._heads(self.wq(x)), self._heads(self.wk(x)), self._heads(self.wv(x))
        att = (q @ k.transpose(-2, -1)) * self.scale
        att = att + key_padding[:, None, None, :].to(att.dtype) * self.mask_value
        att = att.softmax(dim=-1)
        out = (att @ v).permute(0, 2, 3, 1).reshape(n, t, self.head_dim * self.num_heads)
        return self.wo(out)


class TransformerLayer(nn.Module):
    """ResiDual: x[0] is the post-norm stream, x[1] the un-normalised residual sum."""

    def __init__(self, model_dim: int, attention: MultiHeadAttention, ff_layer: nn.Module) -> None:
        super().__init__()
        self.att_layer = attention
        self.ff_layer = ff_layer
        self.norm1 = nn.LayerNorm(model_dim)
        self.norm2 = nn.LayerNorm(model_dim)

    def forward(self, x: tuple[torch.Tensor, torch.Tensor], key_padding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        att = self.att_layer(x[0], key_padding)
        x0 = self.norm1(x[0] + att)
        x1 = x[1] + att
        ff = self.ff_layer(x0)
        return self.norm2(x0 + ff), x1 + ff


def feed_forward(model_dim: int, ff_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(model_dim, ff_dim), nn.ReLU(), nn.Linear(ff_dim, model_dim))


class TransformerEncoder(nn.Module):
    def __init__(self, model_dim: int, num_layers: int, num_heads: int, ff_dim: int, bias: Mapping[str, bool]) -> None:
        super().__init__()
        ff = feed_forward(model_dim, ff_dim)  # one block, shared by every layer (as upstream)
        self.encoder_layers = nn.ModuleList(
            [TransformerLayer(model_dim, MultiHeadAttention(model_dim, num_heads, bias), ff) for _ in range(num_layers)]
        )
        self.final_norm = nn.LayerNorm(model_dim)
        self.model_dim = model_dim

    def unshare_feed_forward(self) -> None:
        """Give each layer its own feed-forward block, for checkpoints whose layers differ there."""
        model_dim = self.model_dim
        for layer in self.encoder_layers:
            ff_dim = layer.ff_layer[0].out_features
            layer.ff_layer = feed_forward(model_dim, ff_dim)


class EncodecMAE(nn.Module):
    """Upstream's `EncodecMAE` without the training-only parts."""

    def __init__(
        self, *, model_dim: int = 768, num_layers: int = 10, num_heads: int = 12, ff_dim: int = 4096,
        encodec_scale: float = 1.0, bias: Mapping[str, bool] | None = None,
    ) -> None:
        super().__init__()
        self.wav_encoder = EncodecEncoder(scale=encodec_scale)
        self.feat_projector = nn.Linear(ENCODEC_DIM, model_dim)
        self.positional_encoder = SinusoidalPositionalEmbeddings()
        self.visible_encoder = TransformerEncoder(model_dim, num_layers, num_heads, ff_dim, bias or {})

    @property
    def num_layers(self) -> int:
        return len(self.visible_encoder.encoder_layers)

    @property
    def model_dim(self) -> int:
        return self.visible_encoder.model_dim

    def hidden_states(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The positional-encoded input and every layer's post-norm stream; the last entry is the
        encoder output upstream returns (`x[0] + final_norm(x[1])`). [B, T', D] each, + frames [B]."""
        features = self.wav_encoder(waves)
        frames = torch.div(lengths, HOP_LENGTH, rounding_mode="floor")
        x = self.positional_encoder(self.feat_projector(features))
        key_padding = torch.arange(x.shape[1], device=x.device)[None] >= frames[:, None]
        states = [x]
        stream = (x, x)
        for layer in self.visible_encoder.encoder_layers:
            stream = layer(stream, key_padding)
            states.append(stream[0])
        states[-1] = stream[0] + self.visible_encoder.final_norm(stream[1])
        return states, frames


#: prefixes of upstream's training-only modules, present in the checkpoints and not needed here
TRAINING_ONLY = ("target_encoder.", "decoder.", "decoder_projector.", "head.", "extra_head.", "masker.", "loss.")


def architecture_from_state(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Sizes read off the checkpoint (the head count is not in the shapes: it comes from config.gin)."""
    layers = {int(k.split(".")[2]) for k in state if k.startswith("visible_encoder.encoder_layers.")}
    prefix = "visible_encoder.encoder_layers.0."
    return {
        "model_dim": state["feat_projector.weight"].shape[0],
        "num_layers": len(layers),
        "ff_dim": state[prefix + "ff_layer.0.weight"].shape[0],
        "bias": {name: f"{prefix}att_layer.{name}.bias" in state for name in ("wq", "wk", "wv", "wo")},
    }

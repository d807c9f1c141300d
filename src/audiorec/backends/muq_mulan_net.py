"""MuQ-MuLan's audio tower (OpenMuQ/MuQ-MuLan-large; tencent-ailab/MuQ, MIT; PyPI muq==0.1.0)
rebuilt offline, with the upstream parameter names (`mulan.` prefix dropped).

Upstream (`MuQMuLan.extract_audio_latents`): the waveform is cut into 10 s clips (a shorter
last clip is completed with the track's beginning); each clip goes through MuQ (fine-tuned
with MuLan, its weights in the MuLan checkpoint), its last hidden state (after the final
LayerNorm, `use_layer_idx: -1`) is projected 1024 -> 768 (`audio.proj`), run through an
8-layer pre-norm transformer (lucidrains' MuLaN blocks: bias-free LayerNorm with a learned
gain, l2-normalised queries/keys with learned scales and a fixed scale 8, GEGLU feed-forward),
averaged over time, projected to the 512-d joint space (`audio_to_latents`) and
l2-normalised; the clips' latents are averaged.

Here the transformer also takes each item's key mask and means run over valid frames, so a
padded batch equals lone clips. `audio.aggregator` (a Conv1d upstream builds but never calls)
is loaded so that every audio key is accounted for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .hf_common import masked_time_mean
from .muq_net import MuQNet


class LayerNorm(nn.Module):
    """Bias-free LayerNorm with a learned gain (`learned_gamma`)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.learned_gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.learned_gamma, None)


class GEGLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = x.chunk(2, dim=-1)
        return F.gelu(gate) * x


def feed_forward(dim: int, mult: float) -> nn.Sequential:
    hidden = int(dim * mult * 2 / 3)
    return nn.Sequential(LayerNorm(dim), nn.Linear(dim, hidden * 2, bias=False), GEGLU(), nn.Identity(), nn.Linear(hidden, dim, bias=False))


class Attention(nn.Module):
    def __init__(self, dim: int, dim_head: int, heads: int, scale: float = 8.0) -> None:
        super().__init__()
        self.heads, self.scale = heads, scale
        inner = dim_head * heads
        self.norm = LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.q_scale = nn.Parameter(torch.ones(dim_head))
        self.k_scale = nn.Parameter(torch.ones(dim_head))
        self.to_out = nn.Sequential(nn.Linear(inner, dim, bias=False), nn.Identity())

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        x = self.norm(x)
        q, k, v = self.to_q(x), *self.to_kv(x).chunk(2, dim=-1)
        q, k, v = (t.reshape(b, n, self.heads, -1).transpose(1, 2) for t in (q, k, v))
        q = F.normalize(q, dim=-1) * self.q_scale
        k = F.normalize(k, dim=-1) * self.k_scale
        sim = torch.einsum("bhid,bhjd->bhij", q, k) * self.scale
        sim = sim.masked_fill(~mask[:, None, None, :], -torch.finfo(sim.dtype).max)
        out = torch.einsum("bhij,bhjd->bhid", sim.softmax(dim=-1), v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class Transformer(nn.Module):
    def __init__(self, dim: int, depth: int, dim_head: int, heads: int, ff_mult: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            [nn.ModuleList([Attention(dim, dim_head, heads), feed_forward(dim, ff_mult)]) for _ in range(depth)]
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """Each layer's output [B, T, D] (upstream's last one is its `audio_embeds` before the mean)."""
        keep = mask[..., None].to(x.dtype)
        out = []
        for attn, ff in self.layers:
            x = (attn(x, mask) + x) * keep
            x = (ff(x) + x) * keep
            out.append(x)
        return out


class _MuQHolder(nn.Module):
    """`audio.model` upstream is the MuQ wrapper, whose `model` is MuQModel."""

    def __init__(self, muq: MuQNet) -> None:
        super().__init__()
        self.model = muq


class AudioTower(nn.Module):
    """AudioSpectrogramTransformerPretrained's inference path (`audio.*`)."""

    def __init__(self, muq: MuQNet, *, model_dim: int, dim: int, depth: int, dim_head: int, heads: int, ff_mult: float) -> None:
        super().__init__()
        self.model = _MuQHolder(muq)
        self.aggregator = nn.Conv1d(25, 1, kernel_size=1)  # built, never called upstream
        self.transformer = Transformer(dim, depth, dim_head, heads, ff_mult)
        self.proj = nn.Linear(model_dim, dim)


class MuLanAudio(nn.Module):
    """MuLanModel's audio side (`audio.*`, `audio_to_latents.*`)."""

    def __init__(self, muq: MuQNet, *, model_dim: int, dim: int, depth: int, dim_head: int, heads: int,
                 ff_mult: float, dim_latent: int) -> None:
        super().__init__()
        self.audio = AudioTower(muq, model_dim=model_dim, dim=dim, depth=depth, dim_head=dim_head, heads=heads, ff_mult=ff_mult)
        self.audio_to_latents = nn.Linear(dim, dim_latent)

    @property
    def muq(self) -> MuQNet:
        return self.audio.model.model

    def layer_means(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Means over valid frames [B, D_l] of MuQ's hidden states, of each MuLan transformer
        layer, and the l2-normalised joint latent, with the valid 25 Hz frame counts [B]."""
        states, frames = self.muq.hidden_states(waves, lengths)
        mask = torch.arange(states[0].shape[1], device=frames.device)[None] < frames[:, None]
        means = [masked_time_mean(s, mask) for s in states]
        x = self.audio.proj(states[-1]) * mask[..., None].to(states[-1].dtype)
        layers = self.audio.transformer(x, mask)
        means += [masked_time_mean(h, mask) for h in layers]
        latent = F.normalize(self.audio_to_latents(means[-1].to(self.audio_to_latents.weight.dtype)).float(), dim=-1)
        return [*means, latent], frames


def mulan_architecture(config: Mapping[str, Any]) -> dict[str, Any]:
    """MuLanAudio's sizes from MuQ-MuLan's config.json (MuQMuLanConfig: mulan, audio_model,
    audio_transformer, ...)."""
    audio = dict(config.get("audio_transformer") or {})
    if int((config.get("audio_model") or {}).get("use_layer_idx", -1)) != -1:
        raise ValueError("audio_model.use_layer_idx other than -1 (MuQ's last hidden state) is not implemented")
    return {
        "model_dim": int((config.get("audio_model") or {}).get("model_dim") or 1024),
        "dim": int(audio.get("dim", 768)),
        "depth": int(audio.get("tf_depth", 8)),
        "dim_head": int(audio.get("dim_head", 64)),
        "heads": int(audio.get("heads", 8)),
        "ff_mult": float(audio.get("ff_mult", 4)),
        "dim_latent": int((config.get("mulan") or {}).get("dim_latent", 512)),
    }

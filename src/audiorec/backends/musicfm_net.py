"""MusicFM (Won, Hung & Le, ICASSP 2024; minzwon/musicfm, MIT licence) rebuilt offline.

The published `pretrained_{msd,fma}.pt` are Lightning checkpoints of `MusicFM25Hz`: a 128-band
dB mel spectrogram at 24 kHz (hop 240, n_fft 2048), normalised by dataset statistics
(`{msd,fma}_stats.json`), a 2-block residual Conv2d subsampling (x4 in time: 25 Hz), and a
12-layer transformers `Wav2Vec2ConformerEncoder` whose config upstream downloads from
facebook/wav2vec2-conformer-rope-large-960h-ft; here that config is written out
(`CONFORMER_CONFIG`) so nothing is fetched at run time. The module tree below has the upstream
attribute names, so the checkpoint's state dict loads with identical keys (strictly), including
the mel filterbank and window buffers torchaudio stored, which the front end uses as they are.

Padding: the mel front end (reflect padding at each item's own end), the conv subsampling and
each conformer depthwise conv see each item as if it were alone (per-item STFT; padded frames
re-zeroed before every conv), and attention gets a key mask, so a padded batch equals lone runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

SAMPLE_RATE = 24000
HOP_LENGTH = 240
NUM_HEADS = 16

#: facebook/wav2vec2-conformer-rope-large-960h-ft's config.json (the fields the encoder reads),
#: with MusicFM's overrides num_hidden_layers=12, hidden_size=1024.
CONFORMER_CONFIG: dict[str, Any] = {
    "hidden_size": 1024,
    "num_hidden_layers": 12,
    "num_attention_heads": NUM_HEADS,
    "intermediate_size": 4096,
    "hidden_act": "swish",
    "position_embeddings_type": "rotary",
    "rotary_embedding_base": 10000,
    "max_source_positions": 5000,
    "layer_norm_eps": 1e-5,
    "conv_depthwise_kernel_size": 31,
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
    "feat_extract_activation": "gelu",
    "hidden_dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.1,
    "conformer_conv_dropout": 0.1,
    "layerdrop": 0.0,
    "do_stable_layer_norm": True,
}


class _Spectrogram(nn.Module):
    def __init__(self, n_fft: int) -> None:
        super().__init__()
        self.register_buffer("window", torch.hann_window(n_fft))


class _MelScale(nn.Module):
    def __init__(self, n_freqs: int, n_mels: int) -> None:
        super().__init__()
        self.register_buffer("fb", torch.zeros(n_freqs, n_mels))


class _MelSpectrogram(nn.Module):
    """torchaudio.transforms.MelSpectrogram's buffers (`spectrogram.window`, `mel_scale.fb`)."""

    def __init__(self, n_fft: int, n_mels: int) -> None:
        super().__init__()
        self.spectrogram = _Spectrogram(n_fft)
        self.mel_scale = _MelScale(n_fft // 2 + 1, n_mels)


class MelSTFT(nn.Module):
    """Power mel spectrogram in dB (torchaudio's MelSpectrogram + AmplitudeToDB defaults:
    periodic Hann window, centre reflect padding, power 2, 10*log10(max(x, 1e-10)))."""

    def __init__(self, n_fft: int = 2048, hop_length: int = HOP_LENGTH, n_mels: int = 128) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.mel_stft = _MelSpectrogram(n_fft, n_mels)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """[T] -> [n_mels, T // hop + 1] (float32 regardless of autocast)."""
        window = self.mel_stft.spectrogram.window.float()
        spec = torch.stft(
            wave.float(), self.n_fft, hop_length=self.hop_length, win_length=self.n_fft, window=window,
            center=True, pad_mode="reflect", normalized=False, onesided=True, return_complex=True,
        ).abs().pow(2.0)
        mel = torch.matmul(spec.transpose(-1, -2), self.mel_stft.mel_scale.fb.float()).transpose(-1, -2)
        return 10.0 * torch.log10(torch.clamp(mel, min=1e-10))


class RandomProjectionQuantizer(nn.Module):
    """Only its buffers: the pretraining targets' projection and codebook live in the checkpoint."""

    def __init__(self, input_dim: int, codebook_dim: int, codebook_size: int) -> None:
        super().__init__()
        self.register_buffer("random_projection", torch.zeros(input_dim, codebook_dim))
        self.register_buffer("codebook", torch.zeros(codebook_size, codebook_dim))


class Res2dModule(nn.Module):
    def __init__(self, idim: int, odim: int, stride: tuple[int, int] = (2, 2)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(idim, odim, 3, padding=1, stride=stride)
        self.bn1 = nn.BatchNorm2d(odim)
        self.conv2 = nn.Conv2d(odim, odim, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(odim)
        self.relu = nn.ReLU()
        self.diff = (idim != odim) or (stride[0] > 1)
        if self.diff:
            self.conv3 = nn.Conv2d(idim, odim, 3, padding=1, stride=stride)
            self.bn3 = nn.BatchNorm2d(odim)

    def forward(self, x: torch.Tensor, keep_out: torch.Tensor) -> torch.Tensor:
        """x [B, C, F, T] with padded frames already zero; keep_out [B, T'] the valid output frames."""
        keep = keep_out[:, None, None, :].to(x.dtype)
        out = self.relu(self.bn1(self.conv1(x))) * keep
        out = self.bn2(self.conv2(out))
        skip = self.bn3(self.conv3(x)) if self.diff else x
        return self.relu(skip + out) * keep


class Conv2dSubsampling(nn.Module):
    def __init__(self, idim: int, hdim: int, odim: int, n_bands: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(Res2dModule(idim, hdim, (2, 2)), Res2dModule(hdim, hdim, (2, 2)))
        self.linear = nn.Linear(hdim * n_bands // 2 // 2, odim)

    @staticmethod
    def out_frames(frames: torch.Tensor) -> list[torch.Tensor]:
        """Valid frames after each stride-2, pad-1, kernel-3 conv: ceil(n / 2)."""
        f1 = torch.div(frames + 1, 2, rounding_mode="floor")
        return [f1, torch.div(f1 + 1, 2, rounding_mode="floor")]

    def forward(self, x: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, F, T] normalised mel (padding zero) -> [B, T/4, odim] and the valid frame counts."""
        x = x[:, None]
        for block, valid in zip(self.conv, self.out_frames(frames), strict=True):
            x = block(x, torch.arange(x.shape[-1] // 2 + x.shape[-1] % 2, device=x.device)[None] < valid[:, None])
        b, c, f, t = x.shape
        x = x.permute(0, 3, 1, 2).reshape(b, t, c * f)
        return self.linear(x), self.out_frames(frames)[-1]


def conformer_config(overrides: Mapping[str, Any]) -> Any:
    from transformers import Wav2Vec2ConformerConfig

    config = Wav2Vec2ConformerConfig(**{**CONFORMER_CONFIG, **overrides})
    config._attn_implementation = "sdpa"
    return config


class MusicFM(nn.Module):
    """MusicFM25Hz's inference path with its parameter names."""

    def __init__(
        self,
        *,
        n_fft: int = 2048,
        n_mels: int = 128,
        conv_dim: int = 512,
        encoder_dim: int = 1024,
        codebook_dim: int = 16,
        codebook_size: int = 4096,
        conformer: Mapping[str, Any] | None = None,
        stats: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        from transformers.models.wav2vec2_conformer.modeling_wav2vec2_conformer import (
            Wav2Vec2ConformerEncoder,
        )

        self.preprocessor_melspec_2048 = MelSTFT(n_fft=n_fft, n_mels=n_mels)
        self.quantizer_melspec_2048_0 = RandomProjectionQuantizer(n_mels * 4, codebook_dim, codebook_size)
        self.conv = Conv2dSubsampling(1, conv_dim, encoder_dim, n_bands=n_mels)
        self.config = conformer_config({"hidden_size": encoder_dim, **(conformer or {})})
        self.conformer = Wav2Vec2ConformerEncoder(self.config)
        self.linear = nn.Linear(encoder_dim, codebook_size)
        self.cls_token = nn.Parameter(torch.zeros(encoder_dim))
        self.mean = float((stats or {}).get("melspec_2048_mean", 0.0))
        self.std = float((stats or {}).get("melspec_2048_std", 1.0))
        self._keep: torch.Tensor | None = None
        for layer in self.conformer.layers:  # a lone item's depthwise conv sees zeros past its end
            layer.conv_module.depthwise_conv.register_forward_pre_hook(self._zero_padding)

    def _zero_padding(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...] | None:
        if self._keep is None:
            return None
        return (args[0] * self._keep[:, None, :].to(args[0].dtype), *args[1:])

    @property
    def num_layers(self) -> int:
        return len(self.conformer.layers)

    def mel_frames(self, lengths: torch.Tensor) -> torch.Tensor:
        """Mel frames per item: the centred STFT gives n // hop + 1, upstream drops the last one."""
        return torch.div(lengths, self.preprocessor_melspec_2048.hop_length, rounding_mode="floor")

    def features(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-item normalised mel [B, n_mels, T] (zero past each item's frames) and frame counts."""
        frames = self.mel_frames(lengths)
        total = int(frames.max())
        n_mels = self.preprocessor_melspec_2048.mel_stft.mel_scale.fb.shape[1]
        mel = waves.new_zeros(waves.shape[0], n_mels, total, dtype=torch.float32)
        for i, n in enumerate(lengths.tolist()):
            m = self.preprocessor_melspec_2048(waves[i, :n])[..., :-1]
            mel[i, :, : m.shape[-1]] = (m - self.mean) / self.std
        return mel, frames

    def hidden_states(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The conformer input and each layer's output (the last after the final LayerNorm),
        [B, T, D] each, with the valid frame counts [B]."""
        from transformers.masking_utils import create_bidirectional_mask

        mel, mel_frames = self.features(waves, lengths)
        hidden, frames = self.conv(mel, mel_frames)
        mask = torch.arange(hidden.shape[1], device=hidden.device)[None] < frames[:, None]
        hidden = hidden.masked_fill(~mask[..., None], 0.0)
        attention = create_bidirectional_mask(config=self.config, inputs_embeds=hidden, attention_mask=mask)
        rotary = self.conformer.embed_positions(hidden) if self.conformer.embed_positions is not None else None
        states = [hidden]
        self._keep = mask
        try:
            for layer in self.conformer.layers:
                out = layer(hidden, attention_mask=attention, relative_position_embeddings=rotary)
                hidden = out[0] if isinstance(out, tuple) else out
                states.append(hidden)
        finally:
            self._keep = None
        states[-1] = self.conformer.layer_norm(hidden)
        return states, frames


def architecture_from_state(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """MusicFM's sizes read off a checkpoint (everything but the head count, fixed at 16);
    `state` has transformers 5 key names (see wav2vec_family.rename_checkpoint_keys)."""
    fb = state["preprocessor_melspec_2048.mel_stft.mel_scale.fb"]
    layers = {int(k.split(".")[2]) for k in state if k.startswith("conformer.layers.")}
    encoder_dim = state["conv.linear.weight"].shape[0]
    return {
        "n_fft": (fb.shape[0] - 1) * 2,
        "n_mels": fb.shape[1],
        "conv_dim": state["conv.conv.0.conv1.weight"].shape[0],
        "encoder_dim": encoder_dim,
        "codebook_dim": state["quantizer_melspec_2048_0.codebook"].shape[1],
        "codebook_size": state["quantizer_melspec_2048_0.codebook"].shape[0],
        "conformer": {
            "num_hidden_layers": len(layers),
            "intermediate_size": state["conformer.layers.0.ffn1.intermediate_dense.weight"].shape[0],
            "conv_depthwise_kernel_size": state["conformer.layers.0.conv_module.depthwise_conv.weight"].shape[-1],
            "num_attention_heads": NUM_HEADS if encoder_dim % NUM_HEADS == 0 else 1,
            "num_conv_pos_embeddings": state["conformer.pos_conv_embed.conv.parametrizations.weight.original1"].shape[-1],
        },
    }

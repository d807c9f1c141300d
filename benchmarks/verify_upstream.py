"""Check the MERT, MusicFM, EncodecMAE and MuQ backends against their authors' own code, with
identical random weights, at the published sizes (or tiny ones).

Two steps in two Python environments, because upstream code needs its own era of libraries
(transformers 4.x, EnCodec, gin, pytorch_lightning) and the workflow's backends need theirs:

1. `make` (in an environment with the upstream code on PYTHONPATH and its requirements):
   builds the upstream model from its own classes with seeded random weights, saves the
   checkpoint *in the published layout* (what the hub serves), and records upstream's
   per-layer time means of a few clips, each run alone, in reference.npz.
2. `compare` (in the workflow's environment): loads that folder through the backend, exactly as
   a user's `weights:` would, embeds the same clips *as one padded batch*, and prints the
   largest differences per layer.

No upstream code is part of this repository: point `--upstream` at your own checkout.

    # MERT (scripts/mert_hf of github.com/yizhilll/MERT), transformers 4.40 env:
    python benchmarks/verify_upstream.py make mert --upstream ~/src/MERT --size base --out /tmp/v/mert95
    python benchmarks/verify_upstream.py compare mert --out /tmp/v/mert95      # workflow env
    # MuQ (src/muq of the muq==0.1.0 sdist on PyPI), transformers 4.40 + torchaudio + einops + easydict:
    python benchmarks/verify_upstream.py make muq --upstream ~/src/muq-0.1.0/src/muq --size tiny --out /tmp/v/muq
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

CLIP_SECONDS = (3.0, 1.72, 2.4)  # whole EnCodec frames (1/75 s); see docs on partial frames
RATE = 24000

#: facebook/wav2vec2-conformer-rope-large-960h-ft config.json, which upstream MusicFM downloads
FACEBOOK_CONFORMER = {
    "activation_dropout": 0.1, "adapter_kernel_size": 3, "adapter_stride": 2, "add_adapter": False,
    "apply_spec_augment": True, "architectures": ["Wav2Vec2ConformerForCTC"], "attention_dropout": 0.1,
    "bos_token_id": 1, "classifier_proj_size": 256, "codevector_dim": 768, "conformer_conv_dropout": 0.1,
    "contrastive_logits_temperature": 0.1, "conv_bias": True, "conv_depthwise_kernel_size": 31,
    "conv_dim": [512] * 7, "conv_kernel": [10, 3, 3, 3, 3, 2, 2], "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "ctc_loss_reduction": "sum", "ctc_zero_infinity": False, "diversity_loss_weight": 0.1,
    "do_stable_layer_norm": True, "eos_token_id": 2, "feat_extract_activation": "gelu",
    "feat_extract_dropout": 0.0, "feat_extract_norm": "layer", "feat_proj_dropout": 0.1,
    "feat_quantizer_dropout": 0.0, "final_dropout": 0.1, "hidden_act": "swish", "hidden_dropout": 0.1,
    "hidden_size": 1024, "initializer_range": 0.02, "intermediate_size": 4096, "layer_norm_eps": 1e-5,
    "layerdrop": 0.0, "mask_feature_length": 10, "mask_feature_min_masks": 0, "mask_feature_prob": 0.0,
    "mask_time_length": 10, "mask_time_min_masks": 2, "mask_time_prob": 0.05, "max_source_positions": 5000,
    "model_type": "wav2vec2-conformer", "num_adapter_layers": 3, "num_attention_heads": 16,
    "num_codevector_groups": 2, "num_codevectors_per_group": 320, "num_conv_pos_embedding_groups": 16,
    "num_conv_pos_embeddings": 128, "num_feat_extract_layers": 7, "num_hidden_layers": 24,
    "num_negatives": 100, "output_hidden_size": 1024, "pad_token_id": 0, "position_embeddings_type": "rotary",
    "proj_codevector_dim": 768, "rotary_embedding_base": 10000, "use_weighted_layer_sum": False,
    "vocab_size": 32,
}


def clips() -> list[np.ndarray]:
    rng = np.random.default_rng(1234)
    out = []
    for i, s in enumerate(CLIP_SECONDS):
        n = int(s * RATE)
        t = np.arange(n) / RATE
        x = 0.4 * np.sin(2 * np.pi * 110 * (i + 2) * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t))
        out.append((x + 0.05 * rng.standard_normal(n)).astype(np.float32))
    return out


def _perturb(model, seed: int) -> None:
    """Random weights everywhere, norms and BatchNorm statistics included (not their identity init)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=gen))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=gen))


def _old_names(state):
    return {
        k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1", "weight_v"): v
        for k, v in state.items()
    }


# --- make: upstream side ---------------------------------------------------------------------


def make_mert(upstream: Path, size: str, out: Path) -> None:
    import torch
    from transformers import Wav2Vec2FeatureExtractor

    sys.path.insert(0, str(upstream / "scripts"))
    from mert_hf.configuration_MERT import MERTConfig  # the hub's configuration_MERT.py
    from mert_hf.modeling_MERT import MERTModel  # the hub's modeling_MERT.py

    sizes = {
        "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=[16] * 7),
        "base": {},  # MERT-v1-95M: MERTConfig defaults, group-norm feature encoder, post-norm
        "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                      feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True),  # MERT-v1-330M
    }[size]
    torch.manual_seed(0)
    config = MERTConfig(**sizes, sample_rate=RATE, feature_extractor_cqt=False, deepnorm=False)
    model = MERTModel(config).eval()
    _perturb(model, 1)
    out.mkdir(parents=True, exist_ok=True)
    cfg = config.to_dict()
    cfg.update({"architectures": ["MERTModel"], "auto_map": {"AutoConfig": "configuration_MERT.MERTConfig",
                                                             "AutoModel": "modeling_MERT.MERTModel"}})
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=RATE, padding_value=0.0, do_normalize=True,
                                  return_attention_mask=True)
    fe.save_pretrained(out)
    torch.save(_old_names(model.state_dict()), out / "pytorch_model.bin")
    refs = []
    for x in clips():
        inputs = fe(x, sampling_rate=RATE, return_tensors="pt")
        with torch.no_grad():
            hs = model(inputs.input_values, output_hidden_states=True).hidden_states
        refs.append(torch.stack([h[0].mean(0) for h in hs]).numpy())
    np.savez(out / "reference.npz", means=np.stack(refs))


def make_musicfm(upstream: Path, size: str, out: Path) -> None:
    import torch
    import transformers.models.wav2vec2_conformer.modeling_wav2vec2_conformer as conformer

    sys.path.insert(0, str(upstream.parent))  # upstream imports itself as `musicfm.*`
    conformer.Wav2Vec2ConformerConfig.from_pretrained = classmethod(  # offline: the hub config, verbatim
        lambda cls, name, **kw: cls(**FACEBOOK_CONFORMER)
    )
    from musicfm.model.musicfm_25hz import MusicFM25Hz

    out.mkdir(parents=True, exist_ok=True)
    stats = {"melspec_2048_cnt": 14282760192, "melspec_2048_mean": 6.768444971712967, "melspec_2048_std": 18.417922652295623}
    (out / "msd_stats.json").write_text(json.dumps(stats))
    kwargs = {"tiny": dict(encoder_dim=1024, encoder_depth=2, conv_dim=16), "full": {}}[size]
    torch.manual_seed(0)
    model = MusicFM25Hz(is_flash=False, stat_path=str(out / "msd_stats.json"), model_path="", **kwargs).eval()
    _perturb(model, 2)
    state = {"model." + k: v for k, v in _old_names(model.state_dict()).items()}
    torch.save({"epoch": 0, "global_step": 0, "state_dict": state}, out / "pretrained_msd.pt")
    refs = []
    for x in clips():
        with torch.no_grad():
            _, hidden = model.get_predictions(torch.from_numpy(x)[None])
        refs.append(torch.stack([h[0].mean(0) for h in hidden]).numpy())
    np.savez(out / "reference.npz", means=np.stack(refs))


def make_muq(upstream: Path, size: str, out: Path) -> None:
    """MuQ from the `muq` package's own classes (`upstream` = its src/muq folder), saved as
    PyTorchModelHubMixin saves OpenMuQ/MuQ-large-msd-iter: config.json + model.safetensors."""
    import types

    import torch
    from safetensors.torch import save_file

    # the package's __init__ also imports MuQ-MuLan (x_clip, text towers); MuQ alone needs none of it
    package = types.ModuleType("muq")
    package.__path__ = [str(upstream)]
    sys.modules["muq"] = package
    from muq.muq.muq import MuQ, MuQConfig

    kwargs = {"tiny": dict(encoder_depth=2, conv_dim=16), "full": {}}[size]
    stat = {"melspec_2048_cnt": 14282760192, "melspec_2048_mean": 6.768444971712967, "melspec_2048_std": 18.417922652295623}
    config = MuQConfig(stat=stat, w2v2_config=dict(FACEBOOK_CONFORMER), use_rvq_target=True, codebook_size=4096, **kwargs)
    torch.manual_seed(0)
    model = MuQ(config).eval()
    _perturb(model, 3)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config.__dict__, default=str))
    refs = []
    for x in clips():
        with torch.no_grad():
            hidden = model(torch.from_numpy(x)[None], output_hidden_states=True).hidden_states
        refs.append(torch.stack([h[0].mean(0) for h in hidden]).numpy())
    np.savez(out / "reference.npz", means=np.stack(refs))


def make_muq_mulan(upstream: Path, size: str, out: Path) -> None:
    """MuQ-MuLan's audio tower from the package's own classes. The text tower (XLM-RoBERTa from
    the hub) and x_clip's tokenizer are replaced by stand-ins (the backend never reads them); the
    MuQ the audio tower wraps is built from MuQConfig as `MuQ.from_pretrained` would. Saved as
    PyTorchModelHubMixin saves OpenMuQ/MuQ-MuLan-large, the MuQ config.json in out/muq."""
    import types

    import torch
    from safetensors.torch import save_file
    from torch import nn

    package = types.ModuleType("muq")
    package.__path__ = [str(upstream)]
    sys.modules["muq"] = package
    tokenizer = types.ModuleType("x_clip.tokenizer")
    tokenizer.tokenizer = types.SimpleNamespace(vocab_size=1)  # read when text.py defines its classes
    sys.modules["x_clip"] = types.ModuleType("x_clip")
    sys.modules["x_clip.tokenizer"] = tokenizer
    from muq.muq.muq import MuQ, MuQConfig

    depth = {"tiny": 2, "full": 12}[size]
    stat = {"melspec_2048_cnt": 14282760192, "melspec_2048_mean": 6.768444971712967, "melspec_2048_std": 18.417922652295623}
    muq_config = MuQConfig(stat=stat, w2v2_config=dict(FACEBOOK_CONFORMER), use_rvq_target=True, encoder_depth=depth)

    class FromConfig:
        @classmethod
        def from_pretrained(cls, name, **kwargs):
            return MuQ(muq_config)

    package.MuQ = FromConfig
    import muq.muq_mulan.muq_mulan as mm

    class TextStandIn(nn.Module):
        def __init__(self, dim=768, **kwargs):
            super().__init__()
            self.dim = dim
            self.stand_in = nn.Linear(4, dim)

    mm.TextTransformerPretrained = TextStandIn
    config = {
        "mulan": {"sr": 24000, "clip_secs": 10, "dim_latent": 512, "decoupled_contrastive_learning": True,
                  "hierarchical_contrastive_loss": False, "hierarchical_contrastive_loss_layers": None,
                  "sigmoid_contrastive_loss": False, "rank_contrast": True},
        "audio_model": {"name": "OpenMuQ/MuQ-large-msd-iter", "model_dim": 1024, "use_layer_idx": -1},
        "text_model": {"name": "xlm-roberta-large", "model_dim": 1024, "use_layer_idx": -1},
        "audio_transformer": {"dim": 768, "tf_depth": {"tiny": 2, "full": 8}[size], "heads": 8, "dim_head": 64,
                              "attn_dropout": 0.0, "ff_dropout": 0.0, "ff_mult": 4},
        "text_transformer": {"dim": 768, "tf_depth": 8, "max_seq_len": 1024, "dim_head": 64, "heads": 8,
                             "attn_dropout": 0.0, "ff_dropout": 0.0, "ff_mult": 4},
    }
    torch.manual_seed(0)
    model = mm.MuQMuLan(config).eval()
    _perturb(model, 4)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config))
    (out / "muq").mkdir(exist_ok=True)
    (out / "muq" / "config.json").write_text(json.dumps(muq_config.__dict__, default=str))
    mulan = model.mulan
    refs = []
    for x in clips():
        wav = model._get_all_clips(torch.from_numpy(x))  # one clip: all are shorter than 10 s
        with torch.no_grad():
            hidden = mulan.audio.model(wav, output_hidden_states=True).hidden_states
            final, layers = mulan.audio(wav, return_all_layers=True, return_mean=False)
            latent = mulan.get_audio_latents(wav)[0]
        rows = [h[0].mean(0) for h in hidden] + [h[0].mean(0) for h in layers] + [final[0].mean(0), latent]
        refs.append(torch.stack([nn.functional.pad(r, (0, 1024 - r.shape[0])) for r in rows]).numpy())
    np.savez(out / "reference.npz", means=np.stack(refs))


def make_encodecmae(upstream: Path, size: str, out: Path) -> None:
    import torch

    sys.path.insert(0, str(upstream))  # a checkout of habla-liaa/encodecmae at tag v.1.0.0
    from encodecmae.tasks.models.encodecmae.encoders import EncodecEncoder
    from encodecmae.tasks.models.transformers import MultiHeadAttention, SinusoidalPositionalEmbeddings, TransformerEncoder

    dims = {"tiny": (64, 2, 4, 256), "base": (768, 10, 12, 4096)}[size]
    model_dim, layers, heads, ff_dim = dims

    class Head(torch.nn.Module):  # stands in for the training-only parts the checkpoint also holds
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(model_dim, 8)

    torch.manual_seed(0)
    import encodec

    # EncodecEncoder downloads EnCodec's weights; random ones are what this check needs
    encodec.EncodecModel.encodec_model_24khz = staticmethod(
        lambda pretrained=True, repository=None: encodec.EncodecModel._get_model(
            [1.5, 3.0, 6.0, 12.0, 24.0], sample_rate=24000, channels=1, causal=True, model_norm="weight_norm",
            audio_normalize=False, name="encodec_24khz")
    )

    class Upstream(torch.nn.Module):  # the attributes of upstream's EncodecMAE.__init__, in its order
        def __init__(self):
            super().__init__()
            self.wav_encoder = EncodecEncoder()
            self.visible_encoder = TransformerEncoder(model_dim, layers, lambda: MultiHeadAttention(model_dim, heads),
                                                      ff_dim=ff_dim, compile=False)
            self.feat_projector = torch.nn.Linear(self.wav_encoder.out_dim, model_dim)
            self.decoder_projector = torch.nn.Linear(model_dim, model_dim)
            self.positional_encoder = SinusoidalPositionalEmbeddings(model_dim)
            self.head = Head()

    model = Upstream().eval()
    _perturb(model, 3)
    from encodecmae.tasks.models.encodecmae.mae import EncodecMAE as UpstreamMAE

    out.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": _old_names(model.state_dict()), "epoch": 0}, out / "model.pt")
    (out / "config.gin").write_text(f"MODEL_DIM={model_dim}\nNUM_ENCODER_LAYERS={layers}\nNUM_ENCODER_HEADS={heads}\n")
    refs = []
    for x in clips():  # upstream's extraction, step by step (EncodecMAE.encode_wav/mask/encode_visible)
        wav = torch.from_numpy(x)[None]
        batch = {"wav": wav, "wav_lens": torch.tensor([wav.shape[1]])}
        with torch.no_grad():
            UpstreamMAE.encode_wav(model, batch)
            model.training = False
            UpstreamMAE.mask(model, batch, ignore_mask=True)
            acts = model.visible_encoder.get_activations(batch["visible_tokens"], padding_mask=batch["visible_padding_mask"])
            final = model.visible_encoder(batch["visible_tokens"], padding_mask=batch["visible_padding_mask"])
        states = [batch["projected_wav_features"]] + list(acts[:-1]) + [final]
        refs.append(torch.stack([s[0].mean(0) for s in states]).numpy())
    np.savez(out / "reference.npz", means=np.stack(refs))


# --- compare: workflow side ------------------------------------------------------------------


def compare(model: str, out: Path) -> dict[str, float]:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from audiorec.backends.registry import build_backend

    spec = {"type": model, "weights": str(out)}
    if (out / "muq" / "config.json").is_file():  # muq_mulan: the MuQ config beside it
        spec["muq_config"] = str(out / "muq")
    backend = build_backend(spec)
    backend.load(torch.device("cpu"))
    batch = clips()
    lengths = torch.tensor([len(x) for x in batch])
    waves = torch.zeros(len(batch), int(lengths.max()))
    for i, x in enumerate(batch):
        waves[i, : len(x)] = torch.from_numpy(x)
    ours = backend.embed_batch(waves, lengths).means.numpy()
    ref = np.load(out / "reference.npz")["means"]
    if ours.shape != ref.shape:
        raise SystemExit(f"shape mismatch: backend {ours.shape}, upstream {ref.shape}")
    diff = np.abs(ours - ref)
    scale = np.abs(ref).max(axis=-1, keepdims=True)
    cos = (ours * ref).sum(-1) / (np.linalg.norm(ours, axis=-1) * np.linalg.norm(ref, axis=-1))
    result = {
        "layers": int(ref.shape[1]),
        "dim": int(ref.shape[2]),
        "max_abs_diff": float(diff.max()),
        "max_rel_diff": float((diff / scale).max()),
        "min_cosine": float(cos.min()),
        "max_abs_value": float(np.abs(ref).max()),
    }
    print(json.dumps({"model": model, "folder": str(out), **result}))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["make", "compare"])
    parser.add_argument("model", choices=["mert", "musicfm", "encodecmae", "muq", "muq_mulan"])
    parser.add_argument("--upstream", type=Path, help="checkout of the upstream repository (make)")
    parser.add_argument("--size", default="tiny", help="mert: tiny|base|large; musicfm, muq, muq_mulan: tiny|full; encodecmae: tiny|base")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.step == "make":
        makers = {"mert": make_mert, "musicfm": make_musicfm, "encodecmae": make_encodecmae, "muq": make_muq,
                  "muq_mulan": make_muq_mulan}
        makers[args.model](args.upstream, args.size, args.out)
    else:
        compare(args.model, args.out)


if __name__ == "__main__":
    main()

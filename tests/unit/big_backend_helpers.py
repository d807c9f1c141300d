"""Helpers of the large-backend tests: tiny models saved exactly as their published weights
are laid out, in a local folder or in a Hugging Face cache, and padded batches."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import librosa
import numpy as np
import torch

from audiorec.backends.encodecmae_net import EncodecMAE
from audiorec.backends.musicfm_net import MusicFM

REVISION = "0123456789abcdef0123456789abcdef01234567"


def hf_cache(cache_dir: Path, repo_id: str, folder: Path, revision: str = REVISION) -> Path:
    """Lay `folder`'s files out as huggingface_hub caches a download of `repo_id` (refs/main ->
    snapshots/<rev>/...), so the backend finds them through the same code path a hub id takes."""
    repo = cache_dir / ("models--" + repo_id.replace("/", "--"))
    snap = repo / "snapshots" / revision
    snap.mkdir(parents=True, exist_ok=True)
    for f in folder.iterdir():
        shutil.copy(f, snap / f.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return cache_dir


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2))


def old_weight_norm_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers 5 parametrization names -> weight_g/weight_v, as the published files have them."""
    out = {}
    for k, v in state.items():
        k = k.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1", "weight_v")
        out[k] = v.clone()
    return out


def clips(rate: int, seconds: list[float], seed: int = 0) -> list[np.ndarray]:
    """Noise plus a tone at distinct levels, so that normalisation and padding matter."""
    rng = np.random.default_rng(seed)
    out = []
    for i, s in enumerate(seconds):
        n = int(round(s * rate))
        t = np.arange(n) / rate
        x = 0.3 * (i + 1) * np.sin(2 * np.pi * 220 * (i + 1) * t) + 0.05 * rng.standard_normal(n) + 0.01 * i
        out.append(x.astype(np.float32))
    return out


def pad(batch: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(x) for x in batch])
    waves = torch.zeros(len(batch), int(lengths.max()))
    for i, x in enumerate(batch):
        waves[i, : len(x)] = torch.from_numpy(x)
    return waves, lengths


# The tiny size both wav2vec-family tests build from their real config classes.
_WAV2VEC_TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=48,
    conv_dim=[8] * 7,
    conv_stride=[5, 2, 2, 2, 2, 2, 2],
    conv_kernel=[10, 3, 3, 3, 3, 2, 2],
    num_conv_pos_embedding_groups=2,
)
MERT_TINY = dict(_WAV2VEC_TINY, num_conv_pos_embeddings=16)


def save_mert(folder: Path, *, stable: bool = False, seed: int = 0, do_normalize: bool = True, **extra) -> Path:
    """A random tiny MERT in the published layout: MERT's config.json (model_type mert_model,
    auto_map to its remote code), preprocessor_config.json and pytorch_model.bin with
    old-style weight-norm names."""
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(seed)
    layout = dict(feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True) if stable else dict(
        feat_extract_norm="group", do_stable_layer_norm=False, conv_bias=False
    )
    model = HubertModel(HubertConfig(**MERT_TINY, **layout)).eval()
    with torch.no_grad():  # give the norms non-trivial affine parameters
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["MERTModel"],
        "auto_map": {"AutoConfig": "configuration_MERT.MERTConfig", "AutoModel": "modeling_MERT.MERTModel"},
        "model_type": "mert_model",
        "feature_extractor_cqt": False,
        "feature_extractor_cqt_bins": 336,
        "deepnorm": False,
        "attention_relax": -1.0,
        "sample_rate": 24000,
        "feat_proj_layer_norm": True,
        **MERT_TINY,
        **layout,
        **extra,
    }
    write_json(folder / "config.json", config)
    write_json(
        folder / "preprocessor_config.json",
        {
            "do_normalize": do_normalize,
            "feature_extractor_type": "Wav2Vec2FeatureExtractor",
            "feature_size": 1,
            "padding_side": "right",
            "padding_value": 0,
            "return_attention_mask": True,
            "sampling_rate": 24000,
        },
    )
    torch.save(old_weight_norm_names(model.state_dict()), folder / "pytorch_model.bin")
    return folder


M2V_TINY = dict(_WAV2VEC_TINY, num_conv_pos_embeddings=3, conv_pos_kernel_size=5)


def save_music2vec(folder: Path, seed: int = 0) -> Path:
    from transformers import Data2VecAudioConfig, Data2VecAudioModel

    torch.manual_seed(seed)
    model = Data2VecAudioModel(Data2VecAudioConfig(**M2V_TINY)).eval()
    with torch.no_grad():
        for p in model.parameters():  # random biases too, so padded positions are far from zero
            p.add_(0.1 * torch.randn_like(p))
    folder.mkdir(parents=True, exist_ok=True)
    config = model.config.to_dict()
    config["architectures"] = ["Data2VecAudioModel"]
    write_json(folder / "config.json", config)
    write_json(
        folder / "preprocessor_config.json",
        {"do_normalize": True, "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1,
         "padding_side": "right", "padding_value": 0.0, "return_attention_mask": True, "sampling_rate": 16000},
    )
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    return folder


N_MELS = 16


FM_TINY = dict(n_fft=2048, n_mels=N_MELS, conv_dim=4, encoder_dim=32, codebook_dim=4, codebook_size=8,
            conformer={"num_hidden_layers": 2, "intermediate_size": 48, "conv_depthwise_kernel_size": 5,
                       "num_conv_pos_embeddings": 8})


STATS = {"melspec_2048_cnt": 1000, "melspec_2048_mean": 6.77, "melspec_2048_std": 18.4}


def save_musicfm(folder: Path, variant: str = "msd", seed: int = 0) -> Path:
    """As upstream trains and saves it: Lightning's {'state_dict': {'model.' + key: tensor}, ...},
    torchaudio's buffers (Hann window, HTK mel filterbank) included, old weight-norm names."""
    torch.manual_seed(seed)
    model = MusicFM(**FM_TINY).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(0.1 * torch.randn_like(p))
        for name, buf in model.named_buffers():
            if "running_mean" in name:
                buf.normal_(0, 0.1)
            elif "running_var" in name:
                buf.uniform_(0.5, 1.5)
        fb = librosa.filters.mel(sr=24000, n_fft=2048, n_mels=N_MELS, htk=True, norm=None).T
        model.preprocessor_melspec_2048.mel_stft.mel_scale.fb.copy_(torch.from_numpy(fb))
        model.quantizer_melspec_2048_0.codebook.normal_()
    state = {"model." + k: v for k, v in old_weight_norm_names(model.state_dict()).items()}
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"epoch": 3, "global_step": 1000, "pytorch-lightning_version": "2.1.0", "state_dict": state},
               folder / f"pretrained_{variant}.pt")
    (folder / f"{variant}_stats.json").write_text(json.dumps(STATS))
    return folder


CONFIG_GIN = """NUM_ENCODEC_TARGETS=8
MODEL_DIM=16
NUM_ENCODER_LAYERS=2
NUM_ENCODER_HEADS=4
NUM_DECODER_LAYERS=2
tasks.models.EncodecMAE:
    wav_encoder = @tasks.models.encodecmae.encoders.EncodecEncoder
    visible_encoder = @encoder/tasks.models.transformers.TransformerEncoder
encoder/tasks.models.transformers.TransformerEncoder:
    model_dim=%MODEL_DIM
    num_layers=%NUM_ENCODER_LAYERS
    attention_layer=@encoder/tasks.models.transformers.MultiHeadAttention
    compile=True
encoder/tasks.models.transformers.MultiHeadAttention:
    model_dim=%MODEL_DIM
    num_heads=%NUM_ENCODER_HEADS
"""


def save_encodecmae(folder: Path, *, shared_ff: bool = True, seed: int = 0) -> Path:
    """As upstream's hub files: model.pt = {'state_dict': ...} with the training-only modules
    (decoder, heads, target quantiser) and old weight-norm names; config.gin beside it."""
    torch.manual_seed(seed)
    model = EncodecMAE(model_dim=16, num_layers=2, num_heads=4, ff_dim=32)
    if not shared_ff:
        model.visible_encoder.unshare_feed_forward()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    state = old_weight_norm_names(model.state_dict())
    state.update({"decoder.encoder_layers.0.norm1.weight": torch.ones(16), "head.layer.weight": torch.zeros(64, 16),
                  "decoder_projector.weight": torch.zeros(16, 16),
                  "target_encoder.model.vq.layers.0._codebook.embed": torch.zeros(8, 128)})
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "epoch": 1}, folder / "model.pt")
    (folder / "config.gin").write_text(CONFIG_GIN)
    (folder / "imports").write_text("encodecmae.tasks.models: tasks.models\n")
    return folder


#: a tiny HTSAT (2 stages) + RoBERTa text tower, from the real ClapConfig
CLAP_AUDIO_TINY = dict(spec_size=256, num_mel_bins=64, patch_embeds_hidden_size=8, depths=[1, 1],
                       num_attention_heads=[1, 2], hidden_size=16, window_size=8, projection_hidden_size=16)
CLAP_TEXT_TINY = dict(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=24, projection_hidden_size=16, max_position_embeddings=40)


def save_clap(folder: Path, *, seed: int = 0, fusion: bool = False) -> Path:
    """A random tiny ClapModel saved as laion/larger_clap_music is laid out (save_pretrained:
    config.json + model.safetensors, the feature extractor's preprocessor_config.json);
    `fusion`: a fused model (enable_fusion, truncation `fusion`) like laion/clap-htsat-fused."""
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    torch.manual_seed(seed)
    audio = dict(CLAP_AUDIO_TINY, enable_fusion=fusion)
    model = ClapModel(ClapConfig(text_config=CLAP_TEXT_TINY, audio_config=audio, projection_dim=8)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for name, buf in model.named_buffers():
            if "running_mean" in name:
                buf.normal_(0, 0.5)
            elif "running_var" in name:
                buf.uniform_(0.5, 1.5)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    ClapFeatureExtractor(truncation="fusion" if fusion else "rand_trunc").save_pretrained(folder)
    return folder


#: a tiny MuQ conformer: the fields of a wav2vec2-conformer config.json that MuQ's
#: `w2v2_config` carries (the published one is facebook/wav2vec2-conformer-rope-large's)
MUQ_W2V2 = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48, hidden_act="swish",
                position_embeddings_type="rotary", rotary_embedding_base=10000, max_source_positions=5000,
                layer_norm_eps=1e-5, conv_depthwise_kernel_size=5, num_conv_pos_embeddings=8,
                num_conv_pos_embedding_groups=2, feat_extract_activation="gelu", hidden_dropout=0.1,
                attention_dropout=0.1, activation_dropout=0.1, conformer_conv_dropout=0.1, layerdrop=0.0,
                do_stable_layer_norm=True, model_type="wav2vec2-conformer")


def muq_config(**overrides: Any) -> dict[str, Any]:
    """config.json as PyTorchModelHubMixin writes MuQConfig (every field), tiny sizes."""
    config = dict(label_rate=25, num_codebooks=1, codebook_dim=16, codebook_size=16, features=["melspec_2048"],
                  hop_length=240, n_mels=N_MELS, conv_dim=4, encoder_dim=32, encoder_depth=2, mask_hop=0.4,
                  mask_prob=0.6, is_flash=False, stat={"melspec_2048_mean": 6.77, "melspec_2048_std": 18.4},
                  w2v2_config=dict(MUQ_W2V2), use_rvq_target=True, use_vq_target=False, use_encodec_target=False,
                  rvq_ckpt_path=None, recon_loss_ratio=None, resume_checkpoint=None, rvq_n_codebooks=8,
                  rvq_multi_layer_num=1)
    config.update(overrides)
    return config


def save_muq(folder: Path, seed: int = 0, **overrides: Any) -> Path:
    """A random tiny MuQ as OpenMuQ/MuQ-large-msd-iter is laid out: config.json + model.safetensors
    with `model.` keys, the Mel-RVQ target weights included (training-only), no mel buffers."""
    from safetensors.torch import save_file

    from audiorec.backends.muq_net import MuQNet, muq_architecture

    config = muq_config(**overrides)
    torch.manual_seed(seed)
    shapes = {"conv.conv.0.conv1.weight": torch.zeros(config["conv_dim"], 1, 3, 3),
              "conv.linear.weight": torch.zeros(config["encoder_dim"], 1),
              "linear.weight": torch.zeros(config["codebook_size"], 1),
              **{f"conformer.layers.{i}.x": torch.zeros(1) for i in range(config["encoder_depth"])}}
    model = MuQNet(**muq_architecture(config, shapes)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
        for name, buf in model.named_buffers():
            if "running_mean" in name:
                buf.normal_(0, 0.1)
            elif "running_var" in name:
                buf.uniform_(0.5, 1.5)
    state = {"model." + k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("preprocessor_")}
    state.update({"model.rvq.quantizers.0.codebook.weight": torch.randn(1024, 16),
                  "model.rvq.quantizers.0.in_proj.parametrizations.weight.original0": torch.randn(16, 1, 1)})
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
    write_json(folder / "config.json", config)
    return folder


#: a tiny SF-NFNet-F0 (the slow pathway narrowed; mule-torch's own MuleConfig fields)
MULE_TINY = dict(slow_stem_channels=(2, 4, 8, 16), fusion_output_channels=(16, 32, 64, 96), slow_stage_out=(32, 64, 96, 96),
                 slow_stage_in=(32, 64, 128, 192), slow_group_size=16, embedding_dim=288)


def save_mule(folder: Path, seed: int = 0) -> Path:
    """A random tiny MULE as matteospanio/mule is laid out (mule-torch's save_pretrained:
    config.json + model.safetensors with the librosa mel filterbank and DFT buffers)."""
    from mule_torch import MuleConfig, MuleModel

    torch.manual_seed(seed)
    model = MuleModel(MuleConfig(**MULE_TINY)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(folder)
    return folder


MULAN_CONFIG = {
    "mulan": {"sr": 24000, "clip_secs": 10, "dim_latent": 8, "decoupled_contrastive_learning": True,
              "hierarchical_contrastive_loss": False, "hierarchical_contrastive_loss_layers": None,
              "sigmoid_contrastive_loss": False, "rank_contrast": True},
    "audio_model": {"name": "OpenMuQ/MuQ-large-msd-iter", "model_dim": 32, "use_layer_idx": -1},
    "text_model": {"name": "xlm-roberta-large", "model_dim": 1024, "use_layer_idx": -1},
    "audio_transformer": {"dim": 16, "tf_depth": 2, "heads": 2, "dim_head": 8, "attn_dropout": 0.0, "ff_dropout": 0.0, "ff_mult": 4},
    "text_transformer": {"dim": 16, "tf_depth": 2, "max_seq_len": 64, "dim_head": 8, "heads": 2, "attn_dropout": 0.0,
                         "ff_dropout": 0.0, "ff_mult": 4},
}


def save_muq_mulan(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """A random tiny MuQ-MuLan as OpenMuQ/MuQ-MuLan-large is laid out (config.json +
    model.safetensors with `mulan.` keys: the fine-tuned MuQ, the audio transformer, both
    projections, a text tower and the contrastive loss), and the MuQ config.json it names
    (as OpenMuQ/MuQ-large-msd-iter serves it). Returns (MuLan folder, MuQ folder)."""
    from safetensors.torch import load_file, save_file

    from audiorec.backends.muq_mulan_net import MuLanAudio, mulan_architecture
    from audiorec.backends.muq_net import MuQNet, muq_architecture

    muq_dir = save_muq(folder / "muq", seed=seed)
    muq_state = {k.removeprefix("model."): v for k, v in load_file(str(muq_dir / "model.safetensors")).items()}
    torch.manual_seed(seed + 1)
    muq = MuQNet(**muq_architecture(muq_config(), muq_state))
    model = MuLanAudio(muq, **mulan_architecture(MULAN_CONFIG))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
        for name, buf in model.named_buffers():
            if "running_var" in name:
                buf.uniform_(0.5, 1.5)
    state = {"mulan." + k: v.contiguous() for k, v in model.state_dict().items() if ".preprocessor_" not in k}
    state.update({"mulan.audio.model.model.rvq.quantizers.0.codebook.weight": torch.randn(1024, 16),
                  "mulan.text.model.embeddings.word_embeddings.weight": torch.randn(10, 16),
                  "mulan.text_to_latents.weight": torch.randn(8, 16), "mulan.text_to_latents.bias": torch.randn(8),
                  "mulan.contrast.temperatures": torch.randn(1, 1, 1)})
    mulan = folder / "mulan"
    mulan.mkdir(parents=True, exist_ok=True)
    save_file(state, str(mulan / "model.safetensors"), metadata={"format": "pt"})
    write_json(mulan / "config.json", MULAN_CONFIG)
    return mulan, muq_dir

"""Cost of the large backends per 30-second clip: parameters, weight memory, FLOPs, CPU time
and peak memory, measured on randomly initialised models of the published sizes (built
offline from their configs: same architecture, same cost) and on the tiny test sizes.

    PYTHONPATH=src python benchmarks/backends.py                      # everything, ~20 min on 2 cores
    PYTHONPATH=src python benchmarks/backends.py --only mert-95M,encodecmae-base --out benchmarks/out/backends.json

Each model runs in its own process (peak RSS is per model). FLOPs are counted by
torch.utils.flop_counter on one 30 s clip (matmuls and convolutions; elementwise work is not
counted). Jukebox is not runnable here; its row is an analytic estimate (see `jukebox_estimate`).
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

CLIP_SECONDS = 30.0


def _wav2vec(kind: str, size: str):
    import torch
    from transformers import Data2VecAudioConfig, Data2VecAudioModel, HubertConfig, HubertModel

    from audiorec.backends.registry import build_backend

    tiny = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48, conv_dim=[8] * 7,
                num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    if kind == "mert":
        sizes = {"tiny": tiny, "95M": {}, "330M": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                                                          intermediate_size=4096, feat_extract_norm="layer",
                                                          do_stable_layer_norm=True, conv_bias=True)}[size]
        config, cls, rate = HubertConfig(**sizes), HubertModel, 24000
    else:
        sizes = {"tiny": {**tiny, "num_conv_pos_embeddings": 3, "conv_pos_kernel_size": 5}, "v1": {}}[size]
        config, cls, rate = Data2VecAudioConfig(**sizes), Data2VecAudioModel, 16000
    config._attn_implementation = "sdpa"
    b = build_backend({"type": kind, "weights": "random-init/offline"})
    b.model = cls(config).eval()
    b._config = config.to_dict()
    b._preprocessor = {"do_normalize": True, "sampling_rate": rate}
    b.device = torch.device("cpu")
    return b, b.model


def _musicfm(size: str):
    import torch

    from audiorec.backends.musicfm_net import MusicFM
    from audiorec.backends.registry import build_backend

    kwargs = {"tiny": dict(n_mels=16, conv_dim=4, encoder_dim=32, codebook_dim=4, codebook_size=8,
                           conformer={"num_hidden_layers": 2, "intermediate_size": 48, "conv_depthwise_kernel_size": 5,
                                      "num_conv_pos_embeddings": 8}),
              "330M": {}}[size]
    b = build_backend({"type": "musicfm"})
    b.model = MusicFM(**kwargs, stats={"melspec_2048_mean": 6.77, "melspec_2048_std": 18.4}).eval()
    b.device = torch.device("cpu")
    return b, b.model


def _encodecmae(size: str):
    import torch

    from audiorec.backends.encodecmae_net import EncodecMAE
    from audiorec.backends.registry import build_backend

    kwargs = {"tiny": dict(model_dim=16, num_layers=2, num_heads=4, ff_dim=32), "base": {}}[size]
    b = build_backend({"type": "encodecmae"})
    b.model = EncodecMAE(**kwargs).eval()
    b.device = torch.device("cpu")
    return b, b.model


def _clap(size: str):
    """LAION-CLAP's audio side. Full size: HTSAT-base as in laion/larger_clap_music's config
    (128-wide patch embedding, depths 2-2-12-2), written out here since the hub is offline."""
    import torch
    from transformers import ClapAudioConfig, ClapAudioModelWithProjection, ClapFeatureExtractor

    from audiorec.backends.registry import build_backend

    sizes = {"tiny": dict(patch_embeds_hidden_size=8, depths=[1, 1], num_attention_heads=[1, 2], hidden_size=16,
                          projection_hidden_size=16, projection_dim=8),
             "larger": dict(patch_embeds_hidden_size=128, depths=[2, 2, 12, 2], num_attention_heads=[4, 8, 16, 32],
                            hidden_size=1024, projection_hidden_size=768, projection_dim=512)}[size]
    b = build_backend({"type": "clap", "weights": "random-init/offline"})
    b.model = ClapAudioModelWithProjection(ClapAudioConfig(**sizes)).eval()
    b.extractor = ClapFeatureExtractor(truncation="rand_trunc")
    width, stages = sizes["patch_embeds_hidden_size"], len(sizes["depths"])
    b._sizes = lambda: (width, stages, sizes["projection_dim"])  # noqa: SLF001 - no config.json offline
    b.device = torch.device("cpu")
    return b, b.model


def _muq(size: str):
    import torch

    from audiorec.backends.muq_net import MuQNet
    from audiorec.backends.registry import build_backend

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from verify_upstream import FACEBOOK_CONFORMER

    kwargs = {"tiny": dict(n_mels=16, conv_dim=4, encoder_dim=32, encoder_depth=2, codebook_size=8,
                           w2v2_config={**FACEBOOK_CONFORMER, "num_attention_heads": 2, "intermediate_size": 48,
                                        "conv_depthwise_kernel_size": 5, "num_conv_pos_embeddings": 8,
                                        "num_conv_pos_embedding_groups": 2}),
              "large": dict(w2v2_config=FACEBOOK_CONFORMER)}[size]
    stats = {"melspec_2048_mean": 6.77, "melspec_2048_std": 18.4}
    b = build_backend({"type": "muq"})
    b.model = MuQNet(**kwargs, stats=stats).eval()
    b.device = torch.device("cpu")
    return b, b.model


def _muq_mulan(size: str):
    import torch

    from audiorec.backends.muq_mulan_net import MuLanAudio
    from audiorec.backends.registry import build_backend

    muq_backend, muq = _muq(size)
    dims = {"tiny": dict(model_dim=32, dim=16, depth=2, dim_head=8, heads=2, ff_mult=4, dim_latent=8),
            "large": dict(model_dim=1024, dim=768, depth=8, dim_head=64, heads=8, ff_mult=4, dim_latent=512)}[size]
    b = build_backend({"type": "muq_mulan"})
    b.model = MuLanAudio(muq, **dims).eval()
    b._config = {"mulan": {"clip_secs": 10}, "audio_transformer": {"dim": dims["dim"], "tf_depth": dims["depth"]}}
    b._muq_config = {"encoder_depth": len(muq.conformer.layers), "encoder_dim": muq.config.hidden_size}
    b.device = torch.device("cpu")
    return b, b.model


def _mule(size: str):
    import torch
    from mule_torch import MuleConfig, MuleModel

    from audiorec.backends.registry import build_backend

    kwargs = {"tiny": dict(slow_stem_channels=(2, 4, 8, 16), fusion_output_channels=(16, 32, 64, 96),
                           slow_stage_out=(32, 64, 96, 96), slow_stage_in=(32, 64, 128, 192), slow_group_size=16,
                           embedding_dim=288),
              "f0": {}}[size]
    b = build_backend({"type": "mule"})
    b.model = MuleModel(MuleConfig(**kwargs)).eval()  # the librosa filterbank is built here
    b._config = {"embedding_dim": b.model.embedding_dim}
    b.device = torch.device("cpu")
    return b, b.model


MODELS = {
    "mert-tiny": lambda: _wav2vec("mert", "tiny"),
    "mert-95M": lambda: _wav2vec("mert", "95M"),
    "mert-330M": lambda: _wav2vec("mert", "330M"),
    "music2vec-tiny": lambda: _wav2vec("music2vec", "tiny"),
    "music2vec-v1": lambda: _wav2vec("music2vec", "v1"),
    "musicfm-tiny": lambda: _musicfm("tiny"),
    "musicfm-330M": lambda: _musicfm("330M"),
    "encodecmae-tiny": lambda: _encodecmae("tiny"),
    "encodecmae-base": lambda: _encodecmae("base"),
    "clap-tiny": lambda: _clap("tiny"),
    "clap-larger": lambda: _clap("larger"),
    "muq-tiny": lambda: _muq("tiny"),
    "muq-large": lambda: _muq("large"),
    "muq_mulan-tiny": lambda: _muq_mulan("tiny"),
    "muq_mulan-large": lambda: _muq_mulan("large"),
    "mule-tiny": lambda: _mule("tiny"),
    "mule-f0": lambda: _mule("f0"),
}


def _windows(backend, seconds: float):
    """One clip as the engine hands it over: cut into the backend's windows, padded batch."""
    import torch

    rate = backend.sample_rate
    n = int(seconds * rate)
    win = int((backend.window_seconds or seconds) * rate)
    lengths = [min(win, n - s) for s in range(0, n, win)]
    gen = torch.Generator().manual_seed(0)
    waves = 0.1 * torch.randn(len(lengths), max(lengths), generator=gen)
    for i, length in enumerate(lengths):
        waves[i, length:] = 0
    return waves, torch.tensor(lengths)


def measure(name: str, threads: int, repeats: int, queue: mp.Queue) -> None:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(threads)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    backend, model = MODELS[name]()
    from torch.nn.utils import parametrize

    for module in model.modules():  # fold weight norm: FlopCounterMode cannot see through parametrizations
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
    params = sum(p.numel() for p in model.parameters())
    waves, lengths = _windows(backend, CLIP_SECONDS)
    backend.embed_batch(waves, lengths)  # warm-up
    with FlopCounterMode(display=False) as counter:
        out = backend.embed_batch(waves, lengths)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        backend.embed_batch(waves, lengths)
        times.append(time.perf_counter() - start)
    queue.put({
        "model": name,
        "params_M": params / 1e6,
        "weights_MB_fp32": params * 4 / 2**20,
        "layers_cached": int(out.means.shape[1]),
        "dim": int(out.means.shape[2]),
        "windows_per_clip": int(waves.shape[0]),
        "gflops_per_clip": counter.get_total_flops() / 1e9,
        "cpu_s_per_clip": min(times),
        "clips_per_s_cpu": 1.0 / min(times),
        "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_model_MB": rss0 / 1024,
    })


def jukebox_estimate() -> dict[str, Any]:
    """5B prior: 72 layers of width 4800; layers 1..36 run (jukemirlib stops there), on 8192
    tokens per 23.78 s window (a 30 s clip: one full window + 6.2 s). Dense part 2*params*tokens,
    plus attention scores 4*tokens*ctx*width per layer (an upper bound: jukebox's attention is
    blocked/factorised and cheaper)."""
    params_per_layer = 5.0e9 / 72
    tokens = 30.0 * 44100 / 128
    dense = 2 * 36 * params_per_layer * tokens
    attention = 36 * 4 * tokens * 8192 * 4800
    return {
        "model": "jukebox-5B (estimate)",
        "params_M": 5000.0,
        "weights_MB_fp32": 5.0e9 * 4 / 2**20,
        "layers_cached": 1,
        "dim": 4800,
        "windows_per_clip": 2,
        "gflops_per_clip": (dense + attention) / 1e9,
        "cpu_s_per_clip": float("nan"),
        "clips_per_s_cpu": float("nan"),
        "peak_rss_MB": float("nan"),
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = "| model | params (M) | fp32 weights (MB) | cached layers x dim | windows / 30 s | GFLOP / 30 s clip | CPU s / clip | clips/s (CPU) | peak RSS (MB) |"
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params_M']:.3g} | {r['weights_MB_fp32']:.0f} | {r['layers_cached']} x {r['dim']} | "
            f"{r['windows_per_clip']} | {r['gflops_per_clip']:.3g} | {r['cpu_s_per_clip']:.2f} | {r['clips_per_s_cpu']:.2f} | "
            f"{r['peak_rss_MB']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(MODELS), help="comma-separated subset of " + ", ".join(MODELS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    rows = []
    for name in args.only.split(","):
        queue: mp.Queue = ctx.Queue()
        proc = ctx.Process(target=measure, args=(name, args.threads, args.repeats, queue))
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            raise SystemExit(f"{name}: measurement failed ({proc.exitcode})")
        rows.append(queue.get())
        print(json.dumps(rows[-1]), file=sys.stderr)
    rows.append(jukebox_estimate())
    print(f"machine: {platform.processor() or platform.machine()}, {args.threads} torch threads; clip {CLIP_SECONDS:.0f} s\n")
    print(table(rows))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()

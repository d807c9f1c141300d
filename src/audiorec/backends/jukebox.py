"""Jukebox backend: activations of OpenAI Jukebox's 5B top prior (layer 36 by default, 4800 dims)
as JukeMIR (Castellon et al., 2021) and its `jukemirlib` extract them, 44.1 kHz.

Runs only in its own conda env (envs/jukebox.yaml: OpenAI's `jukebox` code, jukemirlib,
accelerate), on a GPU with >= 13 GB (the prior alone is 5B parameters, ~10 GB in fp16; CPU is
possible but takes minutes per clip). The model is built as `jukemirlib.setup_models` builds it
(same hparams, on the meta device), but the checkpoints are read with
`torch.load(weights_only=True)` (only jukebox's `Hyperparams` dict type allowed) instead of
unpickling them, and the extraction loop below is jukemirlib's `get_activations_custom`
made batch-safe: jukemirlib caches the conditioning for the *first* batch size it sees and
fails on a different one.

Per window (the prior's context: 8192 tokens = 1048576 samples = 23.78 s; the reference cut
24 s, whose last 0.22 s the prior never saw): peak-normalise the window (jukemirlib's
load_audio), encode it with the VQ-VAE alone (its convs are not causal: a lone window gives the
per-item tokens), pad the top-level tokens, and run the causal prior on the batch: a token never
attends to later ones, so padding cannot change the valid frames. Frames are tokens (344.5 Hz).
"""

from __future__ import annotations

import gc
import logging
import os
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .base import Backend, BackendError, LayerMeans, MissingWeightsError
from .hf_common import autocast, check_precision, load_state_dict, spec_bool

log = logging.getLogger(__name__)

SAMPLE_RATE = 44100
CONTEXT_TOKENS = 8192  # the 5B top prior's context
RAW_TO_TOKENS = 128  # top-level VQ-VAE hop
CONTEXT_SAMPLES = CONTEXT_TOKENS * RAW_TO_TOKENS  # 1048576
WIDTH = 4800
NUM_LAYERS = 72
DEFAULT_WEIGHTS = "~/.cache/jukemirlib"  # jukemirlib's cache: vqvae.pth.tar, prior_level_2.pth.tar
REMOTE_PREFIX = "https://openaipublic.azureedge.net/jukebox/models/5b/"
FILES = ("vqvae.pth.tar", "prior_level_2.pth.tar")
ENV_HINT = (
    "The jukebox backend runs in its own conda env: keep `snakemake --use-conda` (its rule uses "
    "envs/jukebox.yaml), or create it with `conda env create -f envs/jukebox.yaml`."
)


def peak_normalise(wave: torch.Tensor) -> torch.Tensor:
    """jukemirlib.load_audio: divide by the largest absolute sample (silence stays silence)."""
    peak = wave.abs().max()
    return wave / peak if float(peak) > 0 else wave


def prior_activations(
    prior: Any, tokens: torch.Tensor, x_cond: torch.Tensor, y_cond: torch.Tensor, layers: Sequence[int], fp16: bool
) -> dict[int, torch.Tensor]:
    """jukemirlib.get_activations_custom on a batch of top-level tokens [B, T] (T <= 8192):
    {layer number (1-based): [B, T, width]}. `prior` is `top_prior.prior` (ConditionalAutoregressive2D)."""
    n, length = tokens.shape
    x_cond = x_cond[:, :length]
    with torch.no_grad():
        x = prior.preprocess(tokens)
        x = prior.x_emb(x)
        x = torch.cat((x[:, -1:], x[:, :-1]), dim=1)  # shift right by one (jukemirlib's roll)
        if prior.y_cond:
            x[:, 0] = y_cond.view(n, prior.width)
        else:
            x[:, 0] = prior.start_token
        x = prior.x_emb_dropout(x) + prior.pos_emb_dropout(prior.pos_emb())[:length] + x_cond
        if fp16:
            x = x.half()
        wanted = sorted(set(layers))
        reps: dict[int, torch.Tensor] = {}
        for i, layer in enumerate(prior.transformer._attn_mods):
            layer.attn.del_cache()
            x = layer(x, encoder_kv=None, sample=True)
            layer.attn.del_cache()
            if i + 1 in wanted:
                reps[i + 1] = x
                if i + 1 == wanted[-1]:
                    break
    return reps


class JukeboxBackend(Backend):
    type_name = "jukebox"
    #: the workflow's weights folder (resources/weights/{type}), set by the engine before `load`;
    #: None outside the workflow (then the Hugging Face cache / the default folder)
    weights_dir: Path | None = None

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__(spec)
        self.explicit_weights: str | None = self.spec.get("weights")
        self.local_files_only = spec_bool(self.spec, "local_files_only", False)
        layers = self.spec.get("layers", [36])
        if not isinstance(layers, list) or not layers or not all(isinstance(n, int) and 1 <= n <= NUM_LAYERS for n in layers):
            raise BackendError(f"backend jukebox: `layers` must be a list of prior layers in 1..{NUM_LAYERS}, got {layers!r}")
        self.layers: list[int] = sorted(set(layers))
        self.vqvae: Any = None
        self.top_prior: Any = None
        self.cond: tuple[torch.Tensor, torch.Tensor] | None = None
        self.device = torch.device("cpu")
        self.precision = "fp32"

    # --- the contract ---

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def window_seconds(self) -> float | None:
        return CONTEXT_SAMPLES / SAMPLE_RATE

    @property
    def min_seconds(self) -> float:
        return 1.0  # jukemirlib never saw shorter input; well above one token (128 samples)

    @property
    def layer_names(self) -> list[str]:
        return [f"layer{n}" for n in self.layers]

    @property
    def layer_dims(self) -> list[int]:
        return [WIDTH] * len(self.layers)

    # --- weights ---

    @property
    def weights(self) -> str:
        """`weights:` if set, else the workflow's weights folder, else jukemirlib's cache."""
        return str(self.explicit_weights or self.weights_dir or DEFAULT_WEIGHTS)

    def weight_files(self, folder: str | os.PathLike[str] | None = None) -> dict[str, Path]:
        root = Path(os.path.expanduser(str(folder or self.weights)))
        return {name: root / name for name in FILES}

    def prefetch(self, cache_dir: Path) -> dict[str, Any]:
        """Download the two checkpoints (about 10 GB) into `weights:`; nothing when present."""
        files = self.weight_files(self.explicit_weights or cache_dir)
        for name, path in files.items():
            if path.is_file():
                continue
            if self.local_files_only or os.environ.get("HF_HUB_OFFLINE"):
                raise MissingWeightsError(self._missing(path))
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".part")
            log.info("jukebox: downloading %s%s to %s", REMOTE_PREFIX, name, path)
            urllib.request.urlretrieve(REMOTE_PREFIX + name, tmp)
            tmp.replace(path)
        return {"weights": self.weights, "revision": "openai-5b", "files": {k: str(v) for k, v in files.items()}}

    def _missing(self, path: Path) -> str:
        return (
            f"backend jukebox: {path} is missing. Run the fetch_weights job on a machine with internet, or download "
            f"{REMOTE_PREFIX}{path.name} (and the other of {', '.join(FILES)}) into {path.parent}, or set `weights:` "
            "to the folder holding them."
        )

    # --- running ---

    def load(self, device: Any, precision: str = "fp32") -> None:
        check_precision(precision, self.type_name)
        files = self.weight_files()
        for path in files.values():
            if not path.is_file():
                raise MissingWeightsError(self._missing(path))
        try:
            from accelerate import init_empty_weights
            from jukebox.hparams import Hyperparams, setup_hparams
            from jukebox.make_models import MODELS, make_prior, make_vqvae
        except ImportError as err:
            raise BackendError(f"backend jukebox: cannot import OpenAI's jukebox code ({err}). {ENV_HINT}") from err
        self.device = torch.device(device)
        self.precision = precision
        vqvae_name, *priors = MODELS["5b"]
        with init_empty_weights():  # as jukemirlib.setup_models: build on meta, then load
            vqvae = make_vqvae(setup_hparams(vqvae_name, dict(sample_length=CONTEXT_SAMPLES)), "meta")
            top_prior = make_prior(setup_hparams(priors[-1], dict()), vqvae, "meta")
        top_prior.prior.only_encode = True
        for model, name in ((top_prior, "prior_level_2.pth.tar"), (vqvae, "vqvae.pth.tar")):
            checkpoint = load_state_dict(files[name], backend=self.type_name, safe_globals=[Hyperparams])
            state = {k.removeprefix("module."): v for k, v in checkpoint["model"].items()}
            missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
            if unexpected or [k for k in missing if not k.endswith(("_cache", "cached_k", "cached_v"))]:
                raise BackendError(
                    f"backend jukebox: {files[name]} does not fit the 5B model: missing {missing[:5]}, unexpected {unexpected[:5]}"
                )
            del checkpoint
            gc.collect()
        self.vqvae = vqvae.to(self.device).eval()
        self.top_prior = top_prior.to(self.device).eval()
        self.cond = self._conditioning()
        log.info("jukebox: 5B prior and VQ-VAE loaded from %s onto %s (%s)", self.weights, self.device, precision)

    def _conditioning(self) -> tuple[torch.Tensor, torch.Tensor]:
        """jukemirlib.get_cond: 'unknown' artist/genre, a 62 s total length, offset 0."""
        prior = self.top_prior
        total = (int(62 * SAMPLE_RATE) // prior.raw_to_tokens) * prior.raw_to_tokens
        metas = [dict(artist="unknown", genre="unknown", total_length=total, offset=0, lyrics="placeholder lyrics")] * 8
        labels = prior.labeller.get_batch_labels(metas, str(self.device))
        x_cond, y_cond, _ = prior.get_cond(None, prior.get_y(labels, 0))
        return x_cond[0, :CONTEXT_TOKENS][None].to(self.device), y_cond[0][None].to(self.device)

    @torch.inference_mode()
    def embed_batch(self, waves: Any, lengths: Any) -> LayerMeans:
        if self.top_prior is None or self.cond is None:
            raise BackendError("backend jukebox: embed_batch before load()")
        waves = torch.as_tensor(waves, dtype=torch.float32)
        lengths = torch.as_tensor(lengths).clamp(max=waves.shape[1])
        tokens, frames = [], []
        for i, n in enumerate(lengths.tolist()):
            wave = peak_normalise(waves[i, : min(n, CONTEXT_SAMPLES)]).to(self.device)
            z = self.vqvae.encode(wave[None, :, None])[-1][:, :CONTEXT_TOKENS]
            tokens.append(z[0])
            frames.append(z.shape[1])
        total = max(frames)
        batch = torch.zeros(len(tokens), total, dtype=torch.long, device=self.device)
        for i, z in enumerate(tokens):
            batch[i, : z.shape[0]] = z
        x_cond, y_cond = self.cond
        n = batch.shape[0]
        with autocast(self.device, self.precision):
            reps = prior_activations(
                self.top_prior.prior, batch, x_cond.repeat(n, 1, 1), y_cond.repeat(n, 1, 1), self.layers,
                fp16=self.precision == "fp16",
            )
        frame_counts = torch.tensor(frames)
        mask = torch.arange(total)[None] < frame_counts[:, None]
        means = []
        for layer in self.layers:
            h = reps[layer].float().cpu()
            means.append((h * mask[..., None]).sum(1) / frame_counts[:, None])
        return LayerMeans(means=torch.stack(means, dim=1), frames=frame_counts)

    def attributes(self) -> dict[str, Any]:
        attrs = super().attributes()
        attrs.update({"weights": self.weights, "revision": "openai-5b", "window_seconds": float(self.window_seconds or 0),
                      "prior_layers": list(self.layers), "peak_normalised": True})
        return attrs


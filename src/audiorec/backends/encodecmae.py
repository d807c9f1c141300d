"""EncodecMAE backend: the published v1 checkpoints (`lpepino/encodecmae-base` by default: files
`model.pt` + `config.gin`), 24 kHz, 4-second windows as upstream's own extraction
(`extract_features_from_file`: 4 s chunks, frames concatenated, then averaged; the model was
pretrained on 4 s segments), 11 cached states of 768 dims (input + 10 layers, the last being
the encoder output the reference used).

A faithful reimplementation (encodecmae_net.py) rather than an adapter over the upstream
package: upstream is not on PyPI, needs gin/ginpipe/pytorch_lightning and EnCodec (which pulls
torchaudio), and executes the gin config stored in the checkpoint. Here `config.gin` is only
*read* for the two settings the shapes do not tell (heads, EnCodec feature scale), and the
state dict is loaded by its own keys, strictly. Verified against upstream v1 code with identical
random weights (docs/backends.md).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .base import BackendError, LayerMeans, MissingWeightsError, TransformerStack
from .encodecmae_net import (
    HOP_LENGTH,
    SAMPLE_RATE,
    TRAINING_ONLY,
    EncodecMAE,
    architecture_from_state,
)
from .hf_common import (
    ResolvedWeights,
    check_precision,
    embed_with_hidden_states,
    load_resolved,
    load_state_dict,
    load_strict,
    resolve_hub_or_local,
    spec_bool,
)
from .wav2vec_family import rename_checkpoint_keys

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = "lpepino/encodecmae-base"
KNOWN = {  # (layers, width) of the published v1 checkpoints
    "lpepino/encodecmae-small": (5, 768),
    "lpepino/encodecmae-base": (10, 768),
    "lpepino/encodecmae-base-st": (10, 768),
    "lpepino/encodecmae-large": (20, 1024),
    "lpepino/encodecmae-large-st": (20, 1024),
}
WINDOW_SECONDS = 4.0


def gin_settings(text: str) -> dict[str, Any]:
    """The few settings of upstream's config.gin this implementation depends on, read as text
    (never executed). Refuses encoder options it does not implement."""
    macros = dict(re.findall(r"^\s*([A-Z][A-Z0-9_]*)\s*=\s*([^\s#]+)", text, flags=re.MULTILINE))

    def value(raw: str) -> str:
        raw = raw.strip().strip("'\"")
        return macros.get(raw[1:], raw) if raw.startswith("%") else raw

    heads = value(macros.get("NUM_ENCODER_HEADS", "12"))
    explicit = re.search(r"encoder/[\w.]*MultiHeadAttention\.num_heads\s*=\s*(\S+)", text)
    if explicit:
        heads = value(explicit.group(1))
    scale = re.search(r"EncodecEncoder\.scale\s*=\s*(\S+)", text) or re.search(
        r"EncodecEncoder\s*:\s*\n(?:\s+.*\n)*?\s+scale\s*=\s*(\S+)", text
    )
    norm = re.search(r"encoder/[\w.]*TransformerEncoder[.:][^\n]*\n?(?:\s+.*\n)*?\s*norm_type\s*=\s*(\S+)", text)
    settings = {"num_heads": int(heads), "encodec_scale": float(value(scale.group(1))) if scale else 1.0}
    if norm and value(norm.group(1)) != "ResiDual":
        raise BackendError(f"backend encodecmae: config.gin sets norm_type={value(norm.group(1))}; only ResiDual is implemented")
    return settings


class EncodecMAEBackend(TransformerStack):
    type_name = "encodecmae"
    first_layer = "input"
    #: the workflow's weights folder (resources/weights/{type}), set by the engine before `load`;
    #: None outside the workflow (then the Hugging Face cache / the default folder)
    weights_dir: Path | None = None

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__(spec)
        self.weights = str(self.spec.get("weights") or DEFAULT_WEIGHTS)
        self.revision: str | None = self.spec.get("revision")
        self.local_files_only = spec_bool(self.spec, "local_files_only", False)
        self._resolved: ResolvedWeights | None = None
        self._sizes_cache: tuple[int, int] | None = None
        self.model: EncodecMAE | None = None
        self.device = torch.device("cpu")
        self.precision = "fp32"

    def _resolve(self, cache_dir: Any = None, local_files_only: bool | None = None) -> ResolvedWeights:
        return resolve_hub_or_local(
            self.type_name,
            self.weights,
            ["model.pt", "config.gin"],
            revision=self.revision,
            local_files_only=self.local_files_only if local_files_only is None else local_files_only,
            cache_dir=cache_dir if cache_dir is not None else self.weights_dir,
        )

    @staticmethod
    def _state(path: Path) -> dict[str, torch.Tensor]:
        raw = load_state_dict(path, backend="encodecmae")
        state = raw.get("state_dict", raw) if isinstance(raw, dict) else None
        if not isinstance(state, dict):
            raise BackendError(f"backend encodecmae: {path} holds no state dict")
        state = rename_checkpoint_keys(state, ())
        return {k: v for k, v in state.items() if not k.startswith(TRAINING_ONLY)}

    # --- the contract ---

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def window_seconds(self) -> float | None:
        return float(self.spec.get("window_seconds", WINDOW_SECONDS))

    @property
    def min_seconds(self) -> float:
        return HOP_LENGTH / SAMPLE_RATE  # one 75 Hz frame

    def layer_sizes(self) -> tuple[int, int]:
        if self.model is not None:
            return self.model.num_layers, self.model.model_dim
        if self._sizes_cache is None:  # the shapes of a checkpoint on this machine (never downloads)
            try:
                resolved = self._resolve(local_files_only=True)
                try:
                    raw = torch.load(str(resolved.files["model.pt"]), map_location="cpu", weights_only=True, mmap=True)
                except Exception as err:
                    raise BackendError(f"backend {self.type_name}: cannot read {resolved.files['model.pt']} with weights_only=True: {err}") from err
                arch = architecture_from_state(raw.get("state_dict", raw))
                self._sizes_cache = (arch["num_layers"], arch["model_dim"])
            except MissingWeightsError as err:
                if self.weights not in KNOWN:
                    raise MissingWeightsError(f"{err} (its layers cannot be declared before that)") from None
                self._sizes_cache = KNOWN[self.weights]
        return self._sizes_cache

    def prefetch(self, cache_dir: Path) -> dict[str, Any]:
        return self._resolve(cache_dir=cache_dir, local_files_only=False).manifest()

    def load(self, device: Any, precision: str = "fp32") -> None:
        check_precision(precision, self.type_name)
        resolved = load_resolved(lambda offline: self._resolve(local_files_only=offline), self.weights_dir)
        settings = gin_settings(resolved.files["config.gin"].read_text(encoding="utf-8"))
        state = self._state(resolved.files["model.pt"])
        try:
            arch = architecture_from_state(state)
        except KeyError as err:
            raise BackendError(f"backend encodecmae: {resolved.files['model.pt']} is not an EncodecMAE v1 checkpoint (no {err})") from None
        if arch["model_dim"] % settings["num_heads"]:
            raise BackendError(f"backend encodecmae: width {arch['model_dim']} is not divisible by {settings['num_heads']} heads")
        model = EncodecMAE(**arch, **settings)
        ff = [k for k in state if ".ff_layer." in k]
        shared = all(
            torch.equal(state[k], state[re.sub(r"encoder_layers\.\d+\.", "encoder_layers.0.", k)]) for k in ff
        )
        if not shared:
            model.visible_encoder.unshare_feed_forward()
        load_strict(model, state, backend=self.type_name, source=str(resolved.files["model.pt"]))
        self._resolved = resolved
        self.device, self.precision = torch.device(device), precision
        self.model = model.to(self.device).eval()
        log.info("encodecmae: loaded %s (revision %s): %s, %s", self.weights, resolved.revision, arch, settings)

    def embed_batch(self, waves: Any, lengths: Any) -> LayerMeans:
        if self.model is None:
            raise BackendError("backend encodecmae: embed_batch before load()")
        return embed_with_hidden_states(self.model, waves, lengths, self.device, self.precision, HOP_LENGTH)

    def attributes(self) -> dict[str, Any]:
        attrs = super().attributes()
        attrs.update(
            {
                "weights": self.weights,
                "revision": self._resolved.revision if self._resolved else str(self.revision or ""),
                "window_seconds": self.window_seconds or 0.0,
            }
        )
        return attrs

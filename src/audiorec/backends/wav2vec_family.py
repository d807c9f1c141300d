"""The wav2vec 2.0 family as used by MERT (HubertModel) and Music2Vec (Data2VecAudioModel):
a conv feature encoder on the raw waveform, a positional conv, and a transformer encoder.

Both backends load the published config.json + weights into transformers' own model classes
(no remote code) and run the modules themselves, for two reasons:

* exact padding: a padded batch must give the per-item result. The conv feature encoder of
  group-norm models (MERT-95M, HuBERT-base style) normalises each channel over *time*, so
  padding shifts its statistics; here that norm is computed over each item's valid frames.
  Data2Vec's positional embedding is a stack of 5 convs whose padded positions become non-zero
  after the first one; here they are re-zeroed between the convs as a lone item's zero padding
  would be. Attention gets each item's key mask.
* stable hidden states: transformers 5 records per-layer outputs with hooks and, for
  pre-norm ("stable layer norm") encoders such as MERT-330M, no longer applies the final
  LayerNorm to the last entry. The loop below gives the historical (4.x, and MERT's own code)
  layout: L+1 entries, the last one after the encoder's final LayerNorm.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch

from .base import BackendError, LayerMeans, MissingWeightsError, TransformerStack
from .hf_common import (
    ResolvedWeights,
    autocast,
    check_precision,
    conv_out_lengths,
    effective_lengths,
    frame_mask,
    load_resolved,
    load_state_dict,
    load_strict,
    masked_time_mean,
    read_json,
    resolve_hub_or_local,
    spec_bool,
    zero_mean_unit_var,
)

log = logging.getLogger(__name__)

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _require_transformers_5() -> None:
    import transformers

    major = int(transformers.__version__.split(".")[0])
    if major < 5:
        raise BackendError(
            f"the wav2vec-family backends need transformers >= 5 (found {transformers.__version__}); "
            "use the workflow's envs/extract.yaml."
        )


def rename_checkpoint_keys(state: Mapping[str, torch.Tensor], prefixes: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Published checkpoints -> transformers 5 names.

    * a wrapper prefix (`hubert.`, `mert_model.`, `data2vec_audio.`) is dropped when every key has it;
    * old-style weight norm (`weight_g`/`weight_v`, as saved by transformers 4.x and MERT's code)
      becomes the parametrization names (`parametrizations.weight.original0/1`) transformers 5 builds.
    """
    keys = list(state)
    for prefix in prefixes:
        if keys and all(k.startswith(prefix) for k in keys):
            state = {k[len(prefix) :]: v for k, v in state.items()}
            break
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith(".weight_g"):
            key = key[: -len("weight_g")] + "parametrizations.weight.original0"
        elif key.endswith(".weight_v"):
            key = key[: -len("weight_v")] + "parametrizations.weight.original1"
        out[key] = value
    return out


def masked_group_norm(x: torch.Tensor, norm: torch.nn.GroupNorm, mask: torch.Tensor) -> torch.Tensor:
    """GroupNorm with one group per channel over the valid frames only ([B, C, T], mask [B, T])."""
    if norm.num_groups != norm.num_channels:
        raise BackendError("masked_group_norm supports one group per channel (the wav2vec 2.0 layout) only")
    x32 = x.float()
    m = mask[:, None, :].to(torch.float32)
    n = m.sum(dim=2, keepdim=True).clamp(min=1.0)
    mean = (x32 * m).sum(dim=2, keepdim=True) / n
    var = (((x32 - mean) * m) ** 2).sum(dim=2, keepdim=True) / n
    y = (x32 - mean) / torch.sqrt(var + norm.eps)
    if norm.affine:
        y = y * norm.weight.float()[None, :, None] + norm.bias.float()[None, :, None]
    return y.to(x.dtype) if x.dtype != torch.float32 else y


def feature_encoder(model: torch.nn.Module, waves: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The conv feature encoder [B, T] -> [B, C, T'], exact per item under right padding."""
    fe = model.feature_extractor
    config = model.config
    x = waves[:, None, :]
    layers = list(fe.conv_layers)
    first = layers[0]
    if isinstance(getattr(first, "layer_norm", None), torch.nn.GroupNorm):
        x = first.conv(x)
        valid = conv_out_lengths(lengths, config.conv_kernel[:1], config.conv_stride[:1])
        x = masked_group_norm(x, first.layer_norm, frame_mask(valid, x.shape[-1]))
        x = first.activation(x)
        layers = layers[1:]
    for layer in layers:  # layer-norm and no-norm conv layers act per frame: padding cannot leak
        x = layer(x)
    return x


def _positional(encoder: torch.nn.Module, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    pos = encoder.pos_conv_embed
    if hasattr(pos, "layers"):  # Data2VecAudio: a stack of convs; re-zero padding between them
        keep = mask[:, None, :].to(hidden.dtype)
        x = hidden.transpose(1, 2)
        for layer in pos.layers:
            x = layer(x * keep)
        return x.transpose(1, 2)
    return pos(hidden)  # HuBERT: one conv over zeroed padding == a lone item's zero padding


def encoder_hidden_states(model: torch.nn.Module, hidden: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """The embedding output and every layer's output ([B, T, D] each), L+1 in all."""
    from transformers.masking_utils import create_bidirectional_mask

    encoder = model.encoder
    stable = bool(getattr(model.config, "do_stable_layer_norm", False))
    hidden = hidden.masked_fill(~mask[..., None], 0.0)
    attention = create_bidirectional_mask(config=model.config, inputs_embeds=hidden, attention_mask=mask)
    hidden = hidden + _positional(encoder, hidden, mask).to(hidden.dtype)
    if not stable:
        hidden = encoder.layer_norm(hidden)
    states = [hidden]
    for layer in encoder.layers:
        out = layer(hidden, attention_mask=attention)
        hidden = out[0] if isinstance(out, tuple) else out
        states.append(hidden)
    if stable:
        states[-1] = encoder.layer_norm(hidden)
    return states


def layer_means(model: torch.nn.Module, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, L+1, D] means over valid frames and [B] frame counts, for already normalised waves."""
    config = model.config
    frames = conv_out_lengths(lengths, config.conv_kernel, config.conv_stride)
    feats = feature_encoder(model, waves, lengths).transpose(1, 2)
    mask = frame_mask(frames, feats.shape[1])
    projected = model.feature_projection(feats)
    hidden = projected[0] if isinstance(projected, tuple) else projected
    states = encoder_hidden_states(model, hidden, mask)
    means = torch.stack([masked_time_mean(s, mask) for s in states], dim=1)
    return means, frames


class Wav2VecFamilyBackend(TransformerStack):
    """A published HuBERT/Data2Vec-style checkpoint (config.json + weights + preprocessor_config.json)."""

    #: defaults of the type
    default_weights: ClassVar[str]
    default_rate: ClassVar[int]
    #: known architectures, so layer names/dims are declared even before the config is cached
    known: ClassVar[dict[str, tuple[int, int]]] = {}
    checkpoint_prefixes: ClassVar[tuple[str, ...]] = ()
    #: the workflow's weights folder (resources/weights/{type}), set by the engine before `load`;
    #: None outside the workflow (then the Hugging Face cache / the default folder)
    weights_dir: Path | None = None

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__(spec)
        self.weights: str = str(self.spec.get("weights") or self.default_weights)
        self.revision: str | None = self.spec.get("revision")
        self.local_files_only = spec_bool(self.spec, "local_files_only", False)
        self._resolved: ResolvedWeights | None = None
        self._config: dict[str, Any] | None = None
        self._preprocessor: dict[str, Any] | None = None
        self.model: torch.nn.Module | None = None
        self.device = torch.device("cpu")
        self.precision = "fp32"

    # --- files ---

    def _resolve(self, *, with_weights: bool, local_files_only: bool | None = None) -> ResolvedWeights:
        required: list[Any] = ["config.json"]
        if with_weights:
            required.append(list(WEIGHT_FILES))
        return resolve_hub_or_local(
            self.type_name,
            self.weights,
            required,
            optional=["preprocessor_config.json"],
            revision=self.revision,
            local_files_only=self.local_files_only if local_files_only is None else local_files_only,
            cache_dir=self.weights_dir,
        )

    def _meta(self) -> dict[str, Any] | None:
        """config.json when it is on this machine; None otherwise. Never downloads: the gather
        step builds backends just to read their declarations (`known` covers the published ids)."""
        if self._config is None:
            try:
                resolved = self._resolve(with_weights=False, local_files_only=True)
            except MissingWeightsError:
                return None
            self._read_meta(resolved)
        return self._config

    def _read_meta(self, resolved: ResolvedWeights) -> None:
        self._config = read_json(resolved.files["config.json"], backend=self.type_name)
        pre = resolved.files.get("preprocessor_config.json")
        self._preprocessor = read_json(pre, backend=self.type_name) if pre else {}

    def layer_sizes(self) -> tuple[int, int]:
        config = self._meta()
        if config is not None:
            return int(config["num_hidden_layers"]), int(config["hidden_size"])
        if self.weights in self.known:
            return self.known[self.weights]
        raise MissingWeightsError(
            f"backend {self.type_name}: cannot find config.json of '{self.weights}' to know its layers; "
            "run the fetch_weights job first or set `weights:` to a folder holding the model."
        )

    # --- the contract ---

    @property
    def sample_rate(self) -> int:
        if self._meta() is not None and self._preprocessor:
            return int(self._preprocessor.get("sampling_rate", self.default_rate))
        return self.default_rate

    @property
    def window_seconds(self) -> float | None:
        return 30.0

    @property
    def min_seconds(self) -> float:
        """The conv stack's receptive field (400 samples for the published models): one frame."""
        return self._receptive_field() / self.sample_rate

    def _receptive_field(self) -> int:
        config = self._meta() or {}
        kernels = config.get("conv_kernel", [10, 3, 3, 3, 3, 2, 2])
        strides = config.get("conv_stride", [5, 2, 2, 2, 2, 2, 2])
        field, hop = 1, 1
        for k, s in zip(kernels, strides, strict=True):
            field += (k - 1) * hop
            hop *= s
        return field

    @property
    def do_normalize(self) -> bool:
        """Wav2Vec2FeatureExtractor's default is True; the checkpoint's preprocessor config decides."""
        self._meta()
        return bool((self._preprocessor or {}).get("do_normalize", True))

    def prefetch(self, cache_dir: Path) -> dict[str, Any]:
        resolved = resolve_hub_or_local(
            self.type_name,
            self.weights,
            ["config.json", list(WEIGHT_FILES)],
            optional=["preprocessor_config.json"],
            revision=self.revision,
            local_files_only=False,
            cache_dir=cache_dir,
        )
        return resolved.manifest()

    @abstractmethod
    def build_config(self, config: dict[str, Any]) -> Any:
        """The transformers config object for the checkpoint's config.json."""

    @abstractmethod
    def build_model(self, config: Any) -> torch.nn.Module:
        """The transformers model that the checkpoint's weights load into."""

    def load(self, device: Any, precision: str = "fp32") -> None:
        _require_transformers_5()
        check_precision(precision, self.type_name)
        resolved = load_resolved(lambda offline: self._resolve(with_weights=True, local_files_only=offline), self.weights_dir)
        self._resolved = resolved
        self._read_meta(resolved)
        assert self._config is not None
        config = self.build_config(self._config)
        config._attn_implementation = "sdpa"
        model = self.build_model(config)
        weights_file = resolved.files[WEIGHT_FILES[0]]
        state = load_state_dict(weights_file, backend=self.type_name)
        state = rename_checkpoint_keys(state, self.checkpoint_prefixes)
        load_strict(model, state, backend=self.type_name, source=str(weights_file))
        self.device = torch.device(device)
        self.precision = precision
        self.model = model.to(self.device).eval()
        rate = self.sample_rate
        log.info(
            "%s: loaded %s (revision %s) from %s: %d layers x %d, %d Hz, do_normalize=%s",
            self.type_name, self.weights, resolved.revision, weights_file,
            config.num_hidden_layers, config.hidden_size, rate, self.do_normalize,
        )

    @torch.inference_mode()
    def embed_batch(self, waves: Any, lengths: Any) -> LayerMeans:
        if self.model is None:
            raise BackendError(f"backend {self.type_name}: embed_batch before load()")
        waves = torch.as_tensor(waves, dtype=torch.float32).to(self.device)
        lengths = torch.as_tensor(lengths).to(self.device)
        lengths = effective_lengths(lengths, waves.shape[1], self._receptive_field())
        if self.do_normalize:
            waves = zero_mean_unit_var(waves, lengths)
        else:
            waves = waves * frame_mask(lengths, waves.shape[1]).to(waves.dtype)
        with autocast(self.device, self.precision):
            means, frames = layer_means(self.model, waves, lengths)
        return LayerMeans(means=means.float().cpu(), frames=frames.cpu())

    def attributes(self) -> dict[str, Any]:
        attrs = super().attributes()
        attrs.update(
            {
                "weights": self.weights,
                "revision": self._resolved.revision if self._resolved else str(self.revision or ""),
                "do_normalize": self.do_normalize,
                "window_seconds": self.window_seconds or 0.0,
            }
        )
        return attrs

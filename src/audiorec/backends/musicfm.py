"""MusicFM backend: minzwon/MusicFM's `pretrained_msd.pt` + `msd_stats.json` (or the FMA pair),
24 kHz, 13 cached hidden states of 1024 dims (conv subsampling output + 12 conformer layers),
each the mean over *time* (the reference code averaged over channels, ARCHITECTURE §5 errata).

`erratum_channel_pooling: true` restores the published code's vectors: every clip zero-padded
(or cut) to 30 s as its extraction script did, each hidden state averaged over its 1024
*channels*, which leaves one value per 25 Hz frame: 750 "dims" (the paper's Table 1), a
summary of loudness over time rather than of content."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from .base import BackendError, LayerMeans, MissingWeightsError, TransformerStack
from .hf_common import (
    ResolvedWeights,
    autocast,
    check_precision,
    embed_with_hidden_states,
    load_resolved,
    load_state_dict,
    load_strict,
    read_json,
    resolve_hub_or_local,
    spec_bool,
)
from .musicfm_net import (
    HOP_LENGTH,
    SAMPLE_RATE,
    Conv2dSubsampling,
    MusicFM,
    architecture_from_state,
)
from .wav2vec_family import rename_checkpoint_keys

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = "minzwon/MusicFM"
VARIANTS = ("msd", "fma")
#: the STFT's reflect padding needs more than n_fft/2 samples; 2048 (85 ms) gives two frames
MIN_SAMPLES = 2048
#: the published code's input: every clip read as exactly 30 s at 24 kHz (cut or zero-padded)
ERRATUM_SAMPLES = 30 * SAMPLE_RATE
#: ...whose channel means have one value per 25 Hz frame: 750
ERRATUM_FRAMES = int(Conv2dSubsampling.out_frames(torch.tensor([ERRATUM_SAMPLES // HOP_LENGTH]))[-1])


class MusicFMBackend(TransformerStack):
    type_name = "musicfm"
    first_layer = "conv_subsampling"
    layer_prefix = "conformer"
    #: the workflow's weights folder (resources/weights/{type}), set by the engine before `load`;
    #: None outside the workflow (then the Hugging Face cache / the default folder)
    weights_dir: Path | None = None

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__(spec)
        self.weights = str(self.spec.get("weights") or DEFAULT_WEIGHTS)
        self.variant = str(self.spec.get("variant", "msd"))
        if self.variant not in VARIANTS:
            raise BackendError(f"backend musicfm: variant '{self.variant}' is not one of {VARIANTS}.")
        self.stats_path: str | None = self.spec.get("stats")
        self.revision: str | None = self.spec.get("revision")
        self.local_files_only = spec_bool(self.spec, "local_files_only", False)
        # the published code's erratum: mean over channels (750 values per 30 s), not over time
        self.channel_pooling_erratum = spec_bool(self.spec, "erratum_channel_pooling", False)
        self._resolved: ResolvedWeights | None = None
        self._arch: dict[str, Any] | None = None
        self.model: MusicFM | None = None
        self.device = torch.device("cpu")
        self.precision = "fp32"

    @property
    def checkpoint_name(self) -> str:
        return f"pretrained_{self.variant}.pt"

    @property
    def stats_name(self) -> str:
        return f"{self.variant}_stats.json"

    # --- files ---

    def _resolve(self, cache_dir: str | os.PathLike[str] | None = None, local_files_only: bool | None = None) -> ResolvedWeights:
        path = Path(os.path.expanduser(self.weights))
        if path.is_file():  # a checkpoint file: stats from `stats:` or beside it
            stats = Path(self.stats_path) if self.stats_path else path.with_name(self.stats_name)
            if not stats.is_file():
                raise MissingWeightsError(
                    f"backend musicfm: no normalisation statistics at {stats}; download {self.stats_name} from "
                    f"huggingface.co/{DEFAULT_WEIGHTS} next to {path.name}, or set `stats:`."
                )
            return ResolvedWeights(self.weights, "local", {self.checkpoint_name: path, self.stats_name: stats})
        resolved = resolve_hub_or_local(
            self.type_name,
            self.weights,
            [self.checkpoint_name, self.stats_name],
            revision=self.revision,
            local_files_only=self.local_files_only if local_files_only is None else local_files_only,
            cache_dir=cache_dir if cache_dir is not None else self.weights_dir,
        )
        if self.stats_path:
            resolved.files[self.stats_name] = Path(self.stats_path)
        return resolved

    def _state(self, resolved: ResolvedWeights) -> dict[str, torch.Tensor]:
        raw = load_state_dict(resolved.files[self.checkpoint_name], backend=self.type_name)
        state = raw.get("state_dict", raw) if isinstance(raw, dict) else raw
        if not isinstance(state, dict):
            raise BackendError(f"backend musicfm: {resolved.files[self.checkpoint_name]} holds no state dict")
        return rename_checkpoint_keys(state, ("model.",))

    def _architecture(self) -> dict[str, Any] | None:
        """Sizes from a checkpoint on this machine (never downloads); None: the published sizes."""
        if self._arch is None:
            try:
                resolved = self._resolve(local_files_only=True)
            except MissingWeightsError:
                return None
            file = resolved.files[self.checkpoint_name]
            # mmap: reading the shapes does not load 1.3 GB
            try:
                raw = torch.load(str(file), map_location="cpu", weights_only=True, mmap=True)
            except Exception as err:
                raise BackendError(f"backend {self.type_name}: cannot read {file} with weights_only=True: {err}") from err
            state = raw.get("state_dict", raw)
            self._arch = architecture_from_state(rename_checkpoint_keys(state, ("model.",)))
        return self._arch

    # --- the contract ---

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def window_seconds(self) -> float | None:
        return 30.0

    @property
    def min_seconds(self) -> float:
        return MIN_SAMPLES / SAMPLE_RATE

    def layer_sizes(self) -> tuple[int, int]:
        if self.model is not None:
            layers, width = self.model.num_layers, self.model.config.hidden_size
        else:
            arch = self._architecture()
            if arch is None:
                layers, width = 12, 1024  # the published checkpoints
            else:
                layers, width = arch["conformer"]["num_hidden_layers"], arch["encoder_dim"]
        return layers, ERRATUM_FRAMES if self.channel_pooling_erratum else width

    def prefetch(self, cache_dir: Path) -> dict[str, Any]:
        return self._resolve(cache_dir=cache_dir, local_files_only=False).manifest()

    def load(self, device: Any, precision: str = "fp32") -> None:
        check_precision(precision, self.type_name)
        resolved = load_resolved(lambda offline: self._resolve(local_files_only=offline), self.weights_dir)
        stats = read_json(resolved.files[self.stats_name], backend=self.type_name)
        for key in ("melspec_2048_mean", "melspec_2048_std"):
            if key not in stats:
                raise BackendError(f"backend musicfm: {resolved.files[self.stats_name]} has no `{key}`")
        state = self._state(resolved)
        try:
            arch = architecture_from_state(state)
        except KeyError as err:
            raise BackendError(
                f"backend musicfm: {resolved.files[self.checkpoint_name]} is not a MusicFM25Hz checkpoint (no {err})"
            ) from None
        model = MusicFM(**arch, stats=stats)
        load_strict(model, state, backend=self.type_name, source=str(resolved.files[self.checkpoint_name]))
        self._resolved, self._arch = resolved, arch
        self.device, self.precision = torch.device(device), precision
        self.model = model.to(self.device).eval()
        log.info("musicfm: loaded %s (%s, revision %s)", self.weights, self.variant, resolved.revision)

    def embed_batch(self, waves: Any, lengths: Any) -> LayerMeans:
        if self.model is None:
            raise BackendError("backend musicfm: embed_batch before load()")
        if self.channel_pooling_erratum:
            return self._channel_means(waves)
        return embed_with_hidden_states(self.model, waves, lengths, self.device, self.precision, MIN_SAMPLES)

    @torch.inference_mode()
    def _channel_means(self, waves: Any) -> LayerMeans:
        """The published code's pooling: each clip as 30 s (its zero padding is content, as the
        extraction script's silence was), every hidden state averaged over channels -> [B, L+1, 750]."""
        assert self.model is not None
        waves = torch.as_tensor(waves, dtype=torch.float32).to(self.device)[:, :ERRATUM_SAMPLES]
        waves = torch.nn.functional.pad(waves, (0, ERRATUM_SAMPLES - waves.shape[1]))
        lengths = torch.full((waves.shape[0],), ERRATUM_SAMPLES, dtype=torch.long, device=self.device)
        with autocast(self.device, self.precision):
            states, frames = self.model.hidden_states(waves, lengths)
        means = torch.stack([s.float().mean(dim=-1) for s in states], dim=1)
        return LayerMeans(means=means.cpu(), frames=frames.cpu())

    def attributes(self) -> dict[str, Any]:
        attrs = super().attributes()
        attrs.update(
            {
                "weights": self.weights,
                "variant": self.variant,
                "revision": self._resolved.revision if self._resolved else str(self.revision or ""),
                "pooling": "mean over valid frames (time), not channels",
            }
        )
        if self.channel_pooling_erratum:
            attrs["pooling"] = "mean over channels of a 30 s input (the published code's erratum): one value per 25 Hz frame"
            attrs["erratum"] = "channel_pooling"
        return attrs

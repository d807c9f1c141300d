"""Shared plumbing of the large pretrained backends: finding weights (Hugging Face id, cache or
local path, offline), reading checkpoints without unpickling code, the padding-aware time mean,
and device/precision handling.

Every backend here turns a zero-padded batch into per-layer means over the *valid* frames of
each item, so that a batch gives the same vectors as running each clip alone; the helpers
below hold the arithmetic that makes that true (conv output lengths, masks, masked means).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .base import BackendError, LayerMeans, MissingWeightsError

log = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


# --- where the weights are ---------------------------------------------------------------


@dataclass
class ResolvedWeights:
    """Local files of one model, and where they came from (for the HDF5 provenance)."""

    source: str  # the `weights:` setting as given
    revision: str  # resolved commit hash for hub downloads, "local" for paths
    files: dict[str, Path] = field(default_factory=dict)  # logical name -> local file

    def manifest(self) -> dict[str, Any]:
        return {
            "weights": self.source,
            "revision": self.revision,
            "files": {name: str(path) for name, path in self.files.items()},
        }


def is_offline(local_files_only: bool | None) -> bool:
    """True when no download may be attempted: the spec says so, or HF_HUB_OFFLINE is set."""
    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    return bool(local_files_only) or env


def _hub_cache_location(cache_dir: str | os.PathLike[str] | None) -> str:
    if cache_dir is not None:
        return str(cache_dir)
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def missing_weights_message(
    backend: str, weights: str, files: Sequence[str], cache_dir: str | os.PathLike[str] | None, reason: str
) -> str:
    """The one message every backend gives when its weights are not on this machine."""
    include = " ".join(f"--include {f}" for entry in files for f in entry.split(" or "))
    return (
        f"backend {backend}: weights '{weights}' are not available here ({reason}). "
        f"Either run the workflow's `fetch_weights` jobs on a machine with internet (they fill the cache), "
        f"or download them yourself: `huggingface-cli download {weights} {include} "
        f"--cache-dir {_hub_cache_location(cache_dir)}`, "
        f"or put {', '.join(files)} into a folder and set `weights:` to that folder."
    )


def resolve_hub_or_local(
    backend: str,
    weights: str,
    required: Sequence[str | Sequence[str]],
    *,
    optional: Sequence[str] = (),
    revision: str | None = None,
    local_files_only: bool | None = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> ResolvedWeights:
    """Find the files of a model given as a local folder or a Hugging Face id.

    `required` lists file names; an entry that is itself a list means "the first of these that
    exists" (e.g. model.safetensors, else pytorch_model.bin), so a user's folder may hold either
    layout the hub uses. Nothing but these named files is downloaded.
    """
    wanted_names = [name if isinstance(name, str) else " or ".join(name) for name in required]
    path = Path(os.path.expanduser(weights))
    if path.exists():
        if not path.is_dir():
            raise BackendError(
                f"backend {backend}: weights '{weights}' is a file; this backend needs a folder holding "
                f"{', '.join(wanted_names)} (or a Hugging Face id)."
            )
        files: dict[str, Path] = {}
        for entry in required:
            choices = [entry] if isinstance(entry, str) else list(entry)
            found = next((path / c for c in choices if (path / c).is_file()), None)
            if found is None:
                raise MissingWeightsError(
                    f"backend {backend}: folder {path} has none of {choices}; put the model's files there "
                    f"({', '.join(wanted_names)})."
                )
            files[choices[0]] = found
        for name in optional:
            if (path / name).is_file():
                files[name] = path / name
        return ResolvedWeights(source=weights, revision="local", files=files)

    if not _HUB_ID.match(weights):
        raise BackendError(
            f"backend {backend}: weights '{weights}' is neither an existing path nor a Hugging Face id "
            "like 'owner/name'. Fix `weights:` in config.yaml."
        )
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
    )

    offline = is_offline(local_files_only)
    files = {}
    commit = revision or "main"

    def fetch(name: str) -> Path:
        return Path(
            hf_hub_download(
                repo_id=weights,
                filename=name,
                revision=revision,
                cache_dir=cache_dir,
                local_files_only=offline,
            )
        )

    for entry in [*required, *[(o,) for o in optional]]:
        choices = [entry] if isinstance(entry, str) else list(entry)
        is_optional = not isinstance(entry, str) and len(choices) == 1 and choices[0] in optional
        got: Path | None = None
        last_error: Exception | None = None
        for name in choices:
            try:
                got = fetch(name)
                break
            except EntryNotFoundError as err:  # the repo has no such file: try the next layout
                last_error = err
            except LocalEntryNotFoundError as err:
                last_error = err
            except (HfHubHTTPError, OSError, ValueError) as err:
                last_error = err
                if not offline:
                    break
        if got is None:
            if is_optional:
                continue
            reason = "offline and not in the cache" if offline else f"download failed: {last_error}"
            raise MissingWeightsError(missing_weights_message(backend, weights, wanted_names, cache_dir, reason))
        files[choices[0]] = got
        snapshot = got.parent
        while snapshot.parent.name != "snapshots" and snapshot != snapshot.parent:
            snapshot = snapshot.parent
        if snapshot.parent.name == "snapshots":
            commit = snapshot.name
    return ResolvedWeights(source=weights, revision=commit, files=files)


def load_resolved(resolve: Any, weights_dir: Path | None) -> ResolvedWeights:
    """Resolve for loading: from the workflow's weights folder without network first (the
    fetch_weights job filled it; cluster nodes may be offline), else as the spec says."""
    if weights_dir is not None:
        try:
            return resolve(True)
        except MissingWeightsError:
            pass
    return resolve(None)


# --- reading checkpoints --------------------------------------------------------------------


def load_state_dict(path: Path, *, backend: str, safe_globals: Iterable[Any] = ()) -> dict[str, Any]:
    """A checkpoint's contents without running pickled code: safetensors, or torch.load with
    weights_only=True (tensors, containers and primitive types only)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path), device="cpu"))
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:
        raise BackendError(
            f"backend {backend}: cannot read {path} as a plain-tensor checkpoint "
            f"(torch.load weights_only=True refused it: {err}). The workflow never unpickles code from a "
            "checkpoint; convert it on a trusted machine to safetensors or a state dict of tensors, "
            "or re-download the published file."
        ) from err


def read_json(path: Path, *, backend: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise BackendError(f"backend {backend}: cannot read {path}: {err}") from err


def load_strict(module: torch.nn.Module, state: Mapping[str, torch.Tensor], *, backend: str, source: str) -> None:
    """load_state_dict(strict=True) with a message that lists what did not match."""
    result = module.load_state_dict(dict(state), strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise BackendError(
            f"backend {backend}: the checkpoint {source} does not fit the model built from its config: "
            f"missing {sorted(result.missing_keys)[:8]} ({len(result.missing_keys)} in all), "
            f"unexpected {sorted(result.unexpected_keys)[:8]} ({len(result.unexpected_keys)} in all). "
            "Check that `weights:` names a checkpoint of this backend type."
        )


# --- padding-aware arithmetic ---------------------------------------------------------------


def conv_out_lengths(lengths: torch.Tensor, kernels: Sequence[int], strides: Sequence[int]) -> torch.Tensor:
    """Frames a stack of unpadded 1-D convolutions makes from `lengths` samples (never negative)."""
    out = lengths.to(torch.long)
    for k, s in zip(kernels, strides, strict=True):
        out = torch.div(out - k, s, rounding_mode="floor") + 1
        out = out.clamp(min=0)
    return out


def frame_mask(frames: torch.Tensor, total: int) -> torch.Tensor:
    """[B, total] True where the frame is one of the item's valid frames."""
    return torch.arange(total, device=frames.device)[None, :] < frames[:, None]


def masked_time_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the valid frames of [B, T, D] in float32; an item without frames is an error."""
    counts = mask.sum(dim=1)
    if bool((counts == 0).any()):
        raise BackendError("an item of the batch has no valid frame; its clip is shorter than the model's receptive field")
    h = hidden.float() * mask[..., None].to(torch.float32)
    return h.sum(dim=1) / counts[:, None].to(torch.float32)


def frame_means(states: list[torch.Tensor] | tuple[torch.Tensor, ...], frames: torch.Tensor) -> torch.Tensor:
    """[B, L+1, D]: each hidden state's mean over each item's first `frames` frames, so padding
    added to batch clips of different lengths never enters a track's vector."""
    mask = torch.arange(states[0].shape[1], device=frames.device)[None] < frames[:, None]
    return torch.stack([masked_time_mean(s, mask) for s in states], dim=1)


def effective_lengths(lengths: torch.Tensor, total: int, min_samples: int) -> torch.Tensor:
    """The samples a model sees as content: the true length, but at least the zero-padded
    minimum the engine pads short clips to (that silence is part of the input), never more
    than the batch holds."""
    return lengths.to(torch.long).clamp(min=min(min_samples, total), max=total)


def zero_mean_unit_var(waves: torch.Tensor, lengths: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Wav2Vec2FeatureExtractor's `do_normalize`, per item over its valid samples; padding stays 0."""
    mask = frame_mask(lengths, waves.shape[1]).to(waves.dtype)
    n = lengths.clamp(min=1).to(waves.dtype)[:, None]
    mean = (waves * mask).sum(dim=1, keepdim=True) / n
    var = (((waves - mean) * mask) ** 2).sum(dim=1, keepdim=True) / n
    return (waves - mean) / torch.sqrt(var + eps) * mask


# --- device and precision -------------------------------------------------------------------


def check_precision(precision: str, backend: str) -> torch.dtype:
    try:
        return PRECISIONS[precision]
    except KeyError:
        raise BackendError(
            f"backend {backend}: precision '{precision}' is not one of {sorted(PRECISIONS)}."
        ) from None


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """Mixed precision on GPU (bf16/fp16); plain fp32 elsewhere or when asked for fp32."""
    if precision == "fp32" or device.type != "cuda":
        yield
        return
    with torch.autocast(device_type="cuda", dtype=PRECISIONS[precision]):
        yield


def spec_bool(spec: Mapping[str, Any], key: str, default: bool = False) -> bool:
    value = spec.get(key, default)
    if not isinstance(value, bool):
        raise BackendError(f"backend setting `{key}` must be true or false, got {value!r}")
    return value


def min_samples(seconds: float, rate: int) -> int:
    return int(math.ceil(seconds * rate))


@torch.inference_mode()
def embed_with_hidden_states(
    model: Any, waves: Any, lengths: Any, device: torch.device, precision: str, min_samples: int
) -> LayerMeans:
    """`embed_batch` for a model whose `hidden_states(waves, lengths)` returns every hidden
    state and each item's valid frame count (MusicFM, EncodecMAE): zero padding up to
    `min_samples` counts as content (the engine padded a short clip that far), padding
    beyond a clip's length never enters its means."""
    waves = torch.as_tensor(waves, dtype=torch.float32).to(device)
    lengths = effective_lengths(torch.as_tensor(lengths).to(device), waves.shape[1], min_samples)
    with autocast(device, precision):
        states, frames = model.hidden_states(waves, lengths)
        means = frame_means(states, frames)
    return LayerMeans(means=means.float().cpu(), frames=frames.cpu())

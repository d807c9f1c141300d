"""MusiCNN backend (`type: musicnn`): a PyTorch port of musicnn's MSD_musicnn / MTT_musicnn
with the original weights read from the TensorFlow checkpoint in the musicnn wheel.

Preprocessing is musicnn's (`musicnn.extractor.batch_data`): 16 kHz, 512-point STFT, hop
256, 96 Slaney mel bands (librosa conventions), log10(10000 x + 1), cut into
non-overlapping patches of 187 frames (3 s), a trailing remainder shorter than a patch
dropped. Two deliberate differences (docs/musicnn.md): the mel spectrogram stays float32
(the original casts it to float16 first; under NumPy >= 2 its `10000 * mel` then overflows
to inf on loud audio and every output becomes the same, under NumPy 1.x it only rounds the
input), and a clip shorter than one patch is zero-padded to one patch (the original
crashes on it).

Track vector = mean over the track's patches of the selected layer; `frames` counts patches.

`erratum_first_patch: true` restores what musicnn 0.1.0's extractor (the PyPI release the
published code used) returns: the *first* patch's penultimate vector for every patch, so the
track's penultimate vector is its first 3 s only (docs/musicnn.md). The other layers are
unaffected, as in that release.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..audio.mel import MelSpectrogram, log_compress
from .base import Backend, BackendError, LayerMeans
from .musicnn_net import PATCH_FRAMES, VARIANTS, MusiCNN, state_dict_from_checkpoint
from .musicnn_weights import (
    CHECKPOINT_PREFIX,
    DEFAULT_WEIGHTS_DIR,
    WHEEL_SHA256,
    fetch_variant,
    variant_dir,
)
from .tf_bundle import TensorBundle

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
#: the shortest clip that yields one full patch: 1 + n // HOP >= PATCH_FRAMES
PATCH_MIN_SAMPLES = (PATCH_FRAMES - 1) * HOP
LAYERS: dict[str, int] = {"mean_pool": 753, "max_pool": 753, "penultimate": 200, "taggram": 50}
DEFAULT_LAYER = "penultimate"
DEFAULT_VARIANT = "MSD_musicnn"
_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def repeat_first_patch(per_patch: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """[P, dim] rows of clips laid end to end (`counts` patches each) -> every clip's rows
    replaced by its first row: musicnn 0.1.0's extractor concatenates the stale first
    batch's `penultimate_` (its BATCH_SIZE is one patch) for every later batch."""
    starts = torch.cumsum(counts, 0) - counts
    first = torch.repeat_interleave(starts, counts).to(per_patch.device)
    return per_patch[first]


def patch_counts(lengths: torch.Tensor) -> torch.Tensor:
    """Patches per clip: whole 187-frame patches of the centred STFT, at least one."""
    frames = 1 + torch.clamp(lengths.to(torch.long), min=PATCH_MIN_SAMPLES) // HOP
    return frames // PATCH_FRAMES


class MusiCNNBackend(Backend):
    type_name: ClassVar[str] = "musicnn"

    def __init__(self, spec: Mapping[str, Any]) -> None:
        spec = dict(spec)
        spec.setdefault("variant", DEFAULT_VARIANT)
        spec.setdefault("layer", DEFAULT_LAYER)
        spec.setdefault("weights_dir", str(DEFAULT_WEIGHTS_DIR))
        super().__init__(spec)
        if spec["variant"] not in VARIANTS:
            raise BackendError(
                f"backend type musicnn: unknown variant {spec['variant']!r}; choose one of {sorted(VARIANTS)} "
                "(set `variant:` of the backend in config.yaml)."
            )
        if spec["layer"] == "mean":
            raise BackendError("backend type musicnn: layer 'mean' needs layers of one width; choose one of "
                               f"{list(LAYERS)}.")
        self.selected_layer_index()  # validates `layer` now, not after minutes of extraction
        if spec.get("patch_batch") is not None and int(spec["patch_batch"]) < 1:
            raise BackendError("backend type musicnn: `patch_batch` must be at least 1.")
        self.variant: str = spec["variant"]
        # the published code's erratum (musicnn 0.1.0): every patch's penultimate = the first patch's
        self.first_patch_erratum = bool(spec.get("erratum_first_patch", False))
        self.weights_dir = Path(spec["weights_dir"])
        self._patch_batch: int | None = None if spec.get("patch_batch") is None else int(spec["patch_batch"])
        self.model: MusiCNN | None = None
        self.mel: MelSpectrogram | None = None
        self.device = torch.device("cpu")
        self.precision = "fp32"
        self.manifest: dict[str, Any] = {}

    @property
    def patch_batch(self) -> int:
        """Patches per forward pass. On CPU small chunks keep the activations (about 3 MB
        per patch for the largest one) in cache: measured fastest at 1-2 patches per thread
        (benchmarks/RESULTS.md); GPUs want large batches."""
        if self._patch_batch is not None:
            return self._patch_batch
        if self.device.type == "cpu":
            return 2 * torch.get_num_threads()
        return 256

    # --- declarations ---

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def min_seconds(self) -> float:
        return PATCH_MIN_SAMPLES / SAMPLE_RATE

    @property
    def layer_names(self) -> list[str]:
        return list(LAYERS)

    @property
    def layer_dims(self) -> list[int]:
        return list(LAYERS.values())

    # --- weights ---

    def prefetch(self, cache_dir: Path | None = None) -> dict[str, Any]:
        """Download the wheel, verify it and unpack this variant's checkpoint.

        `cache_dir` defaults to the spec's `weights_dir`; `load()` reads from the same place
        (a different `cache_dir` given here is remembered for this instance's `load()`).
        """
        if cache_dir is not None:
            self.weights_dir = Path(cache_dir)
        self.manifest = fetch_variant(self.weights_dir, self.variant)
        return self.manifest

    def load(self, device: Any = "cpu", precision: str = "fp32") -> None:
        if precision not in ("fp32", *_AUTOCAST):
            raise BackendError(f"backend type musicnn: unknown precision {precision!r} (fp32, bf16 or fp16)")
        self.manifest = fetch_variant(self.weights_dir, self.variant)
        bundle = TensorBundle(variant_dir(self.weights_dir, self.variant) / f"{CHECKPOINT_PREFIX}.index")
        model = MusiCNN(VARIANTS[self.variant])
        model.load_state_dict(state_dict_from_checkpoint(bundle.read_all(), VARIANTS[self.variant]))
        self.load_model(model, device, precision)

    def load_model(self, model: MusiCNN, device: Any = "cpu", precision: str = "fp32") -> None:
        """Use an already built network (tests use random weights to stay offline)."""
        self.device = torch.device(device)
        self.precision = precision
        self.model = model.eval().to(self.device).fold()
        self.mel = MelSpectrogram(SAMPLE_RATE, N_FFT, HOP, N_MELS).to(self.device)

    # --- running ---

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Mixed precision for the network only; the mel front end always runs in float32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=_AUTOCAST[self.precision])

    def log_mel(self, waves: torch.Tensor) -> torch.Tensor:
        """[B, T] waveforms -> [B, frames, 96] float32 log-mel, padded to at least one patch."""
        assert self.mel is not None, "call load() first"
        if waves.shape[1] < PATCH_MIN_SAMPLES:
            waves = torch.nn.functional.pad(waves, (0, PATCH_MIN_SAMPLES - waves.shape[1]))
        # float32 even inside the engine's autocast: a half-precision mel is exactly the
        # original's float16 problem (docs/musicnn.md)
        with torch.autocast(waves.device.type, enabled=False):
            return log_compress(self.mel(waves.float()))

    @torch.inference_mode()
    def patch_outputs(self, waves: Any, lengths: Any) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Every layer for every patch: ({layer: [P, dim]} in clip order, patches per clip [B]).

        Only frames inside each clip's true length are cut into patches, so a clip gives the
        same patches alone as inside a zero-padded batch.
        """
        if self.model is None:
            raise BackendError("backend type musicnn: call load() before embedding")
        waves = torch.as_tensor(waves, dtype=torch.float32).to(self.device)
        if waves.ndim != 2:
            raise BackendError(f"backend type musicnn: expected waves [batch, samples], got shape {tuple(waves.shape)}")
        lengths = torch.as_tensor(lengths).to("cpu", torch.long)
        if lengths.shape != (waves.shape[0],) or bool((lengths > waves.shape[1]).any()):
            raise BackendError("backend type musicnn: `lengths` must give each clip's samples, at most the padded length")
        counts = patch_counts(lengths)
        mel = self.log_mel(waves)
        patches = torch.cat(
            [mel[i, : int(n) * PATCH_FRAMES].reshape(int(n), PATCH_FRAMES, N_MELS) for i, n in enumerate(counts)]
        )
        outputs: dict[str, list[torch.Tensor]] = {name: [] for name in LAYERS}
        for start in range(0, patches.shape[0], self.patch_batch):
            with self._autocast():
                out = self.model(patches[start : start + self.patch_batch])
            out["taggram"] = torch.sigmoid(out["logits"].float())
            for name in LAYERS:
                outputs[name].append(out[name].float())
        result = {name: torch.cat(parts) for name, parts in outputs.items()}
        if self.first_patch_erratum:
            result["penultimate"] = repeat_first_patch(result["penultimate"], counts)
        return result, counts

    def embed_batch(self, waves: Any, lengths: Any) -> LayerMeans:
        outputs, counts = self.patch_outputs(waves, lengths)
        width = max(LAYERS.values())
        n_patches = int(counts.sum())
        per_patch = torch.zeros(n_patches, len(LAYERS), width, dtype=torch.float32, device=self.device)
        for j, (name, dim) in enumerate(LAYERS.items()):
            per_patch[:, j, :dim] = outputs[name]
        owner = torch.repeat_interleave(torch.arange(len(counts)), counts).to(self.device)
        sums = torch.zeros(len(counts), len(LAYERS), width, dtype=torch.float32, device=self.device)
        sums.index_add_(0, owner, per_patch)
        means = sums / counts.to(self.device, torch.float32)[:, None, None]
        return LayerMeans(means=means.cpu(), frames=counts)

    def attributes(self) -> dict[str, Any]:
        attrs = super().attributes()
        attrs.update(
            {
                "variant": self.variant,
                "weights": f"musicnn==0.1.0 wheel (sha256 {WHEEL_SHA256}), checkpoint {self.variant}",
                "pooling": "mean over non-overlapping 3 s patches (187 frames)",
                "preprocessing": "16 kHz, n_fft 512, hop 256, 96 Slaney mels, float32 log10(10000 x + 1)",
            }
        )
        if self.first_patch_erratum:
            attrs["erratum"] = "first_patch: penultimate of each track's first 3 s patch only (musicnn 0.1.0's extractor)"
        return attrs


def embed_clip(backend: MusiCNNBackend, wave: np.ndarray) -> dict[str, np.ndarray]:
    """Per-patch outputs of one clip, as NumPy (for parity checks and notebooks)."""
    outputs, _ = backend.patch_outputs(torch.from_numpy(np.asarray(wave, np.float32))[None], [len(wave)])
    return {name: value.cpu().numpy() for name, value in outputs.items()}

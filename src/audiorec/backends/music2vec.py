"""Music2Vec (m-a-p/music2vec-v1): a Data2VecAudio model pretrained on music, 16 kHz.

Its own rate is 16 kHz (the preprocessor config says so); the published reference code fed it
24 kHz audio, which this backend does not repeat: the engine resamples to `sample_rate`.
`erratum_24khz: true` restores it: the backend then declares 24 kHz, so the engine feeds the
16 kHz model audio resampled to 24 kHz (everything sounds 1.5x slower and lower to it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from .hf_common import spec_bool
from .wav2vec_family import Wav2VecFamilyBackend

#: the rate the published code fed Music2Vec (its wav24k files, prepared for MusicFM and MERT)
ERRATUM_RATE = 24000
DROP_KEYS = ("model_type", "architectures", "auto_map", "_name_or_path", "transformers_version", "torch_dtype")


class Music2VecBackend(Wav2VecFamilyBackend):
    type_name = "music2vec"
    default_weights = "m-a-p/music2vec-v1"
    default_rate = 16000
    known: ClassVar[dict[str, tuple[int, int]]] = {"m-a-p/music2vec-v1": (12, 768)}
    checkpoint_prefixes = ("data2vec_audio.", "model.")

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__(spec)
        # the published code's erratum: 24 kHz audio into the 16 kHz model
        self.rate_erratum = spec_bool(self.spec, "erratum_24khz", False)

    @property
    def sample_rate(self) -> int:
        return ERRATUM_RATE if self.rate_erratum else super().sample_rate

    def attributes(self) -> dict[str, Any]:
        attrs = super().attributes()
        if self.rate_erratum:
            attrs["erratum"] = "24khz: fed 24 kHz audio, as the published code (the model's rate is 16 kHz)"
        return attrs

    def build_config(self, config: dict[str, Any]) -> Any:
        from transformers import Data2VecAudioConfig

        return Data2VecAudioConfig(**{k: v for k, v in config.items() if k not in DROP_KEYS})

    def build_model(self, config: Any) -> torch.nn.Module:
        from transformers import Data2VecAudioModel

        return Data2VecAudioModel(config)

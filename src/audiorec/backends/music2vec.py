"""Music2Vec (m-a-p/music2vec-v1): a Data2VecAudio model pretrained on music, 16 kHz.

Its own rate is 16 kHz (the preprocessor config says so); the published reference code fed it
24 kHz audio, which this backend does not repeat: the engine resamples to `sample_rate`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from .wav2vec_family import Wav2VecFamilyBackend

DROP_KEYS = ("model_type", "architectures", "auto_map", "_name_or_path", "transformers_version", "torch_dtype")


class Music2VecBackend(Wav2VecFamilyBackend):
    type_name = "music2vec"
    default_weights = "m-a-p/music2vec-v1"
    default_rate = 16000
    known: ClassVar[dict[str, tuple[int, int]]] = {"m-a-p/music2vec-v1": (12, 768)}
    checkpoint_prefixes = ("data2vec_audio.", "model.")

    def build_config(self, config: dict[str, Any]) -> Any:
        from transformers import Data2VecAudioConfig

        return Data2VecAudioConfig(**{k: v for k, v in config.items() if k not in DROP_KEYS})

    def build_model(self, config: Any) -> torch.nn.Module:
        from transformers import Data2VecAudioModel

        return Data2VecAudioModel(config)

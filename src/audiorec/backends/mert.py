"""MERT (m-a-p/MERT-v1-95M, -330M): music HuBERT at 24 kHz, loaded into transformers' HubertModel.

The published checkpoints ship their own modeling code (MERTModel, a HubertModel subclass);
the workflow never runs it. The v1 configs use neither of the two things MERTModel adds (the
CQT feature branch, `feature_extractor_cqt`, and DeepNorm residual scaling, `deepnorm`), so the
weights load 1:1 into HubertModel (key mapping and outputs checked against MERT's own code,
docs/backends.md). A config that turns either on is refused rather than run wrongly.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from .base import BackendError
from .wav2vec_family import Wav2VecFamilyBackend

#: keys of MERT's config.json that HubertConfig does not know, with the value HubertModel implies
MERT_ONLY_KEYS = {"feature_extractor_cqt": False, "deepnorm": False}
DROP_KEYS = ("model_type", "architectures", "auto_map", "_name_or_path", "transformers_version", "torch_dtype")


class MERTBackend(Wav2VecFamilyBackend):
    type_name = "mert"
    default_weights = "m-a-p/MERT-v1-95M"
    default_rate = 24000
    known: ClassVar[dict[str, tuple[int, int]]] = {
        "m-a-p/MERT-v1-95M": (12, 768),
        "m-a-p/MERT-v1-330M": (24, 1024),
    }
    checkpoint_prefixes = ("mert_model.", "hubert.", "model.")

    def build_config(self, config: dict[str, Any]) -> Any:
        from transformers import HubertConfig

        for key, required in MERT_ONLY_KEYS.items():
            if bool(config.get(key, required)) != required:
                raise BackendError(
                    f"backend mert: {self.weights} sets `{key}: {config[key]}`, which HubertModel does not "
                    "implement (only MERT's remote code does). The v1 checkpoints (MERT-v1-95M/-330M) do not "
                    "use it; choose one of those."
                )
        kwargs = {k: v for k, v in config.items() if k not in DROP_KEYS and k not in MERT_ONLY_KEYS}
        return HubertConfig(**kwargs)

    def build_model(self, config: Any) -> torch.nn.Module:
        from transformers import HubertModel

        return HubertModel(config)

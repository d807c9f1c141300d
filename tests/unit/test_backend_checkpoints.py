"""Every checkpoint key is consumed and no parameter is left at its random initialisation,
for every backend that loads a network checkpoint.

A loader can go wrong silently: transformers, for one, re-initialises a weight-norm
parametrisation (`pos_conv_embed`) when the checkpoint names it differently (`weight_g`/
`weight_v` vs `parametrizations.weight.original0/1`), and a lenient load drops keys it does
not know. Here each backend's tiny checkpoint (published layout, tests/unit/big_backend_helpers)
first gets distinct random noise on every floating tensor, so that no value equals an
initialisation; after `load`, every floating tensor of the loaded module must equal one
of the checkpoint's (by value: names differ between layouts), and every floating
checkpoint tensor must be found in the module, except those the backend declares unused
(training-only heads, CLAP's text tower)."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from big_backend_helpers import save_clap, save_encodecmae, save_mert, save_music2vec, save_mule, save_musicfm, save_muq, save_muq_mulan

from audiorec.backends.registry import build_backend


def _perturb_file(path: Path, seed: int) -> None:
    """Distinct noise on every floating tensor of a checkpoint file, in its own format."""
    gen = torch.Generator().manual_seed(seed)

    def noisy(state: dict[str, Any]) -> dict[str, Any]:
        return {
            k: v + 0.01 * torch.randn(v.shape, generator=gen, dtype=v.dtype) if torch.is_tensor(v) and v.is_floating_point() else v
            for k, v in state.items()
        }

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file, save_file

        save_file(noisy(dict(load_file(str(path)))), str(path), metadata={"format": "pt"})
        return
    raw = torch.load(str(path), map_location="cpu", weights_only=True)
    if "state_dict" in raw:
        raw["state_dict"] = noisy(raw["state_dict"])
    else:
        raw = noisy(raw)
    torch.save(raw, str(path))


def _checkpoint(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path)))
    raw = torch.load(str(path), map_location="cpu", weights_only=True)
    return dict(raw.get("state_dict", raw))


def _fingerprint(t: torch.Tensor) -> tuple[tuple[int, ...], str]:
    return tuple(t.shape), hashlib.sha1(t.detach().float().contiguous().cpu().numpy().tobytes()).hexdigest()


def _encodecmae_unused(key: str) -> bool:
    from audiorec.backends.encodecmae_net import TRAINING_ONLY

    return key.startswith(TRAINING_ONLY)


def _muq_unused(key: str) -> bool:
    from audiorec.backends.muq_net import TRAINING_ONLY

    return key.removeprefix("model.").startswith(TRAINING_ONLY)


def _muq_mulan_unused(key: str) -> bool:
    from audiorec.backends.muq_mulan import is_unused

    return is_unused(key.removeprefix("mulan."))


def _clap_unused(key: str) -> bool:
    from audiorec.backends.clap import unused_checkpoint_keys

    return bool(unused_checkpoint_keys([key]))


#: backend type -> (save into a folder, checkpoint file name, spec beyond `weights`, unused-key test)
CASES: dict[str, tuple[Callable[[Path], Path], str, dict[str, Any], Callable[[str], bool]]] = {
    "mert": (save_mert, "pytorch_model.bin", {}, lambda k: False),
    "mert-330M-layout": (functools.partial(save_mert, stable=True), "pytorch_model.bin", {}, lambda k: False),
    "music2vec": (save_music2vec, "pytorch_model.bin", {}, lambda k: False),
    "musicfm": (save_musicfm, "pretrained_msd.pt", {}, lambda k: False),
    "encodecmae": (save_encodecmae, "model.pt", {}, _encodecmae_unused),
    "clap": (save_clap, "model.safetensors", {}, _clap_unused),
    "muq": (save_muq, "model.safetensors", {}, _muq_unused),
    "mule": (save_mule, "model.safetensors", {}, lambda k: False),
    "muq_mulan": (lambda folder: save_muq_mulan(folder)[0], "model.safetensors", {}, _muq_mulan_unused),
}
#: module tensors a backend computes rather than loads (MuQ's mel filterbank and window,
#: which its checkpoint does not hold: torchaudio computes them; checked in test_backend_muq.py)
COMPUTED = {"muq": ("preprocessor_melspec_2048.",), "muq_mulan": ("audio.model.model.preprocessor_melspec_2048.",)}


def loaded(case: str, tmp_path: Path) -> tuple[torch.nn.Module, dict[str, torch.Tensor], Callable[[str], bool]]:
    save, filename, extra, unused = CASES[case]
    folder = save(tmp_path / case)
    _perturb_file(folder / filename, seed=len(case))
    if case == "muq_mulan":  # the MuQ config.json its config names, saved beside it
        extra = {**extra, "muq_config": str(folder.parent / "muq")}
    backend = build_backend({"type": case.split("-")[0], "weights": str(folder), **extra})
    backend.load(torch.device("cpu"))
    return backend.model, _checkpoint(folder / filename), unused


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_key_consumed_and_no_parameter_at_init(case: str, tmp_path: Path) -> None:
    model, state, unused = loaded(case, tmp_path)
    floats = {k: v for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point()}
    from_checkpoint = {_fingerprint(v) for v in floats.values()}
    module = {k: v for k, v in model.state_dict().items() if v.is_floating_point()}
    in_module = {_fingerprint(v) for v in module.values()}
    computed = COMPUTED.get(case, ())
    at_init = sorted(k for k, v in module.items() if _fingerprint(v) not in from_checkpoint and not k.startswith(computed))
    assert not at_init, f"{case}: module tensors not from the checkpoint (left at init?): {at_init}"
    dropped = sorted(k for k, v in floats.items() if not unused(k) and _fingerprint(v) not in in_module)
    assert not dropped, f"{case}: checkpoint tensors the module never received: {dropped}"
    declared = [k for k in floats if unused(k)]
    assert all(_fingerprint(floats[k]) not in in_module or floats[k].numel() <= 1 for k in declared)


@pytest.mark.parametrize("case", ["mert", "mert-330M-layout"])
def test_mert_positional_conv_weight_norm_is_the_checkpoints(case: str, tmp_path: Path) -> None:
    """The named trap: weight_g/weight_v must land in the parametrisation, not be re-initialised."""
    model, state, _ = loaded(case, tmp_path)
    conv = model.encoder.pos_conv_embed.conv
    torch.testing.assert_close(conv.parametrizations.weight.original0, state["encoder.pos_conv_embed.conv.weight_g"], rtol=0, atol=0)
    torch.testing.assert_close(conv.parametrizations.weight.original1, state["encoder.pos_conv_embed.conv.weight_v"], rtol=0, atol=0)
    torch.testing.assert_close(conv.bias, state["encoder.pos_conv_embed.conv.bias"], rtol=0, atol=0)


def test_music2vec_positional_convs_are_the_checkpoints(tmp_path: Path) -> None:
    model, state, _ = loaded("music2vec", tmp_path)
    layers = model.encoder.pos_conv_embed.layers
    assert len(layers) > 1
    for i, layer in enumerate(layers):
        torch.testing.assert_close(layer.conv.weight, state[f"encoder.pos_conv_embed.layers.{i}.conv.weight"], rtol=0, atol=0)


def test_musicfm_positional_conv_weight_norm_is_the_checkpoints(tmp_path: Path) -> None:
    model, state, _ = loaded("musicfm", tmp_path)
    conv = model.conformer.pos_conv_embed.conv
    torch.testing.assert_close(conv.parametrizations.weight.original0, state["model.conformer.pos_conv_embed.conv.weight_g"], rtol=0, atol=0)

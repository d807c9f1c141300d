"""Backend types declared once: `src/audiorec/backends/{type}.yaml` beside `{type}.py`.

A declaration holds every fact about a backend type that something other than its class
needs: the registry (which class to import), the config schema (the `type` enum and the
type's own settings, with defaults and meanings) and the workflow (a `fetch_weights` job?
the GPU rule? the layer sweep? which conda env?). The Snakefile cannot import audiorec
(with --use-conda its interpreter need not have torch), so this module uses only the
standard library and PyYAML, and rules/common.smk loads it by file path; the library
imports it normally. tests/unit/test_backend_declarations.py checks every declaration
against its class.

A declaration file:

    type: mert                             # the `type:` in config.yaml (= the file's stem)
    class: audiorec.backends.mert:MERTBackend
    description: MERT, music HuBERT ...    # one line, for docs and error messages
    sample_rate: 24000                     # Hz at the default settings; null: reads no audio
    window_seconds: 30                     # longest input per forward pass; null: no limit
    weights: true                          # downloads weights (a fetch_weights job)
    network: true                          # runs a network on audio (GPU rule embed_shard_gpu)
    layered: true                          # caches several layers (the layer sweep takes it);
                                           #   or a list setting's name (jukebox: `layers`):
                                           #   layered when that list has several entries
    env: extract                           # conda env envs/{env}.yaml of its jobs
    settings:                              # JSON-schema properties of its own settings
      weights: {type: string, default: m-a-p/MERT-v1-95M, description: ...}
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: the folder of the shipped declarations (this package)
HERE = Path(__file__).resolve().parent
REQUIRED = ("type", "class", "description", "sample_rate", "window_seconds", "weights", "network", "layered", "env")
OPTIONAL = ("settings",)


class DeclarationError(ValueError):
    """A declaration file is malformed; the message names the file and the key."""


@dataclass(frozen=True)
class Declaration:
    """One backend type's facts (see the module docstring for each field)."""

    type: str
    target: str  # "module:Class"
    description: str
    sample_rate: int | None
    window_seconds: float | None
    weights: bool
    network: bool
    layered: bool | str
    env: str
    settings: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def module(self) -> str:
        return self.target.split(":")[0]

    def has_layers(self, spec: Mapping[str, Any]) -> bool:
        """Whether an instance with these settings caches several layers."""
        if isinstance(self.layered, str):
            chosen = spec.get(self.layered)
            if chosen is None:
                chosen = self.settings.get(self.layered, {}).get("default") or []
            return len(chosen) > 1
        return self.layered


def _check(raw: Any, path: Path) -> Declaration:
    where = f"backend declaration {path}"
    if not isinstance(raw, dict):
        raise DeclarationError(f"{where}: must be a mapping of {', '.join(REQUIRED)}")
    missing = [k for k in REQUIRED if k not in raw]
    unknown = [k for k in raw if k not in REQUIRED + OPTIONAL]
    if missing or unknown:
        raise DeclarationError(
            f"{where}: missing {missing or 'nothing'}, unknown {unknown or 'nothing'}; "
            f"a declaration has exactly {', '.join(REQUIRED)} and optionally `settings`."
        )
    if raw["type"] != path.stem:
        raise DeclarationError(f"{where}: `type: {raw['type']}` must equal the file name ({path.stem}).")
    if not isinstance(raw["class"], str) or raw["class"].count(":") != 1:
        raise DeclarationError(f"{where}: `class` must be 'package.module:ClassName', got {raw['class']!r}.")
    for key in ("weights", "network"):
        if not isinstance(raw[key], bool):
            raise DeclarationError(f"{where}: `{key}` must be true or false, got {raw[key]!r}.")
    if not isinstance(raw["layered"], (bool, str)):
        raise DeclarationError(f"{where}: `layered` must be true, false or a list setting's name.")
    if isinstance(raw["layered"], str) and raw["layered"] not in (raw.get("settings") or {}):
        raise DeclarationError(f"{where}: `layered: {raw['layered']}` names no setting of `settings`.")
    settings = raw.get("settings") or {}
    if not isinstance(settings, dict) or not all(isinstance(v, dict) for v in settings.values()):
        raise DeclarationError(f"{where}: `settings` must map each setting to its JSON-schema properties.")
    if raw["sample_rate"] is not None and not isinstance(raw["sample_rate"], int):
        raise DeclarationError(f"{where}: `sample_rate` must be an integer (Hz) or null.")
    return Declaration(
        type=raw["type"],
        target=raw["class"],
        description=str(raw["description"]),
        sample_rate=raw["sample_rate"],
        window_seconds=None if raw["window_seconds"] is None else float(raw["window_seconds"]),
        weights=raw["weights"],
        network=raw["network"],
        layered=raw["layered"],
        env=str(raw["env"]),
        settings=settings,
        path=path,
    )


def read_declarations(folder: Path = HERE) -> dict[str, Declaration]:
    """Every `{type}.yaml` declaration of `folder`, by type name (sorted)."""
    out: dict[str, Declaration] = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise DeclarationError(f"backend declaration {path}: not valid YAML: {err}") from None
        declaration = _check(raw, path)
        out[declaration.type] = declaration
    return out


def config_schema(base: Mapping[str, Any], declarations: Mapping[str, Declaration]) -> dict[str, Any]:
    """The full config schema: `base` (schemas/config.schema.yaml) with the backend `type`
    enum and one `if type == X then X's settings` block per declared type filled in."""
    schema = copy.deepcopy(dict(base))
    backend = schema["$defs"]["backend"]
    backend["properties"]["type"]["enum"] = sorted(declarations)
    backend["allOf"] = [
        {
            "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
            "then": {"properties": copy.deepcopy(d.settings)},
        }
        for name, d in sorted(declarations.items())
    ]
    return schema


def load_config_schema(root: Path, folder: Path | None = None) -> dict[str, Any]:
    """The full config schema of the repository at `root` (its schema file + its declarations)."""
    base = yaml.safe_load((Path(root) / "schemas" / "config.schema.yaml").read_text(encoding="utf-8"))
    return config_schema(base, read_declarations(folder or Path(root) / "src" / "audiorec" / "backends"))

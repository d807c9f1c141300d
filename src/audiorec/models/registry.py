"""Model types, each declared once: a module with a `build` function and a YAML declaration
beside it (`<type>.yaml`), read both here and by the workflow (rules/common.smk cannot import
audiorec, so the facts the workflow needs live in the YAML, not in Python).

A declaration holds:
- `type`, `label` (the report's name), `summary`;
- `gpu`: trained on a GPU when there is one (rule `train`) or a CPU baseline (`train_baseline`);
- `inputs`: `[embeddings]` when it reads a backend's vectors (runs per backend, plus `random`),
  `[]` when it reads none (one run, backend `none`);
- `extra_inputs`: other jobs' outputs it reads, name -> path pattern with {dataset},
  {backend}, {seed} (the `train` rule adds them as inputs; `build` finds them in
  `RunContext.inputs`), or `dataset_file:<stem>`: the dataset's metadata file <stem>.tsv/.csv
  (optionally .bz2; absent when the dataset has none, e.g. artist_mean's id_information);
- `scores_unseen_tracks`: whether it can score a track nobody played in train (through its
  content; never in `items: id`);
- `uses`: shared settings blocks of schemas/config.schema.yaml (`$defs/model_<name>`);
- `settings`: its own settings, as JSON-schema properties (each with default and meaning).

The module's `build(context: RunContext) -> Recommender` makes the model of one run. Model
types outside this package live in the folders of the config's `model_dirs` (module
`<type>.py` beside `<type>.yaml`).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from .base import Recommender
from .data import SplitData
from .item_vectors import ItemVectors
from .items import ItemSettings

BUILTIN_DIR = Path(__file__).resolve().parent
DECLARATION_KEYS = {"type", "label", "summary", "gpu", "inputs", "extra_inputs", "scores_unseen_tracks", "uses", "settings"}


@dataclass(frozen=True)
class ModelDeclaration:
    type: str
    label: str
    summary: str
    gpu: bool
    inputs: tuple[str, ...]
    scores_unseen_tracks: bool
    uses: tuple[str, ...]
    settings: dict[str, Any]
    extra_inputs: dict[str, str] = field(default_factory=dict)
    path: Path = BUILTIN_DIR

    @property
    def reads_embeddings(self) -> bool:
        return "embeddings" in self.inputs

    @property
    def module_file(self) -> Path:
        return self.path.with_suffix(".py")


@dataclass
class RunContext:
    """What a model's `build` gets for one run."""

    spec: dict[str, Any]
    backend: str
    seed: int
    data: SplitData
    vectors: ItemVectors | None
    items: ItemSettings | None
    device: torch.device
    precision: str
    inputs: dict[str, str] = field(default_factory=dict)


def read_declaration(path: Path) -> ModelDeclaration:
    raw = yaml.safe_load(path.read_text()) or {}
    unknown = set(raw) - DECLARATION_KEYS
    if unknown or "type" not in raw:
        raise ValueError(f"{path}: a model declaration needs `type` and takes only {sorted(DECLARATION_KEYS)}; got {sorted(raw)}")
    if raw["type"] != path.stem:
        raise ValueError(f"{path}: declares type {raw['type']!r}; the file must be named {raw['type']}.yaml")
    return ModelDeclaration(
        type=raw["type"],
        label=raw.get("label", raw["type"]),
        summary=raw.get("summary", ""),
        gpu=bool(raw.get("gpu", False)),
        inputs=tuple(raw.get("inputs") or ()),
        scores_unseen_tracks=bool(raw.get("scores_unseen_tracks", False)),
        uses=tuple(raw.get("uses") or ()),
        settings=dict(raw.get("settings") or {}),
        extra_inputs=dict(raw.get("extra_inputs") or {}),
        path=path,
    )


def declarations(extra_dirs: Iterable[str | Path] = ()) -> dict[str, ModelDeclaration]:
    """Every declared model type: the package's, then those of `extra_dirs` (a name may be
    declared once only)."""
    found: dict[str, ModelDeclaration] = {}
    for folder in (BUILTIN_DIR, *map(Path, extra_dirs)):
        if not folder.is_dir():
            raise FileNotFoundError(f"model_dirs: {folder} is not a folder")
        for path in sorted(folder.glob("*.yaml")):
            decl = read_declaration(path)
            if decl.type in found:
                raise ValueError(f"model type {decl.type!r} is declared twice: {found[decl.type].path} and {path}")
            found[decl.type] = decl
    return found


def declaration(kind: str, extra_dirs: Sequence[str | Path] = ()) -> ModelDeclaration:
    known = declarations(extra_dirs)
    if kind not in known:
        raise ValueError(f"unknown model type {kind!r}; declared: {', '.join(known)} (add folders with `model_dirs`)")
    return known[kind]


def builder(decl: ModelDeclaration) -> Callable[[RunContext], Recommender]:
    """The declaration's module's `build` function."""
    if decl.path.parent == BUILTIN_DIR:
        module = importlib.import_module(f"{__package__}.{decl.type}")
    else:
        name = f"audiorec_model_{decl.type}"
        spec = importlib.util.spec_from_file_location(name, decl.module_file)
        if spec is None or spec.loader is None or not decl.module_file.exists():
            raise FileNotFoundError(f"{decl.path}: no module {decl.module_file} beside it")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    build = getattr(module, "build", None)
    if not callable(build):
        raise TypeError(f"{decl.module_file}: a model module must define build(context) -> Recommender")
    return build

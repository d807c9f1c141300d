"""A backend type is declared once (src/audiorec/backends/{type}.yaml): the declarations
agree with the classes, the schema and the workflow are built from them, and a malformed
one is refused with its file named. The end-to-end check (a new type added in a temporary
copy of the repository by a module and a declaration only) is
tests/workflow/test_new_backend_type.py."""

from __future__ import annotations

import ast
import math
import sys
from pathlib import Path

import jsonschema
import pytest

from audiorec.backends import registry
from audiorec.backends.declarations import (
    DeclarationError,
    config_schema,
    load_config_schema,
    read_declarations,
)

ROOT = Path(__file__).resolve().parents[2]
DECLARATIONS = read_declarations()


def test_every_module_beside_a_declaration_is_declared() -> None:
    """A backend module without a declaration would be unreachable from a config."""
    helpers = {"__init__", "base", "registry", "declarations", "hf_common", "wav2vec_family", "tf_bundle"}
    folder = ROOT / "src" / "audiorec" / "backends"
    modules = {p.stem for p in folder.glob("*.py")} - helpers
    modules = {m for m in modules if not m.endswith(("_net", "_weights"))}
    assert modules == set(DECLARATIONS), "declare each backend module in src/audiorec/backends/{type}.yaml"


@pytest.mark.parametrize("type_name", sorted(DECLARATIONS))
def test_declaration_agrees_with_its_class(type_name: str) -> None:
    declaration = DECLARATIONS[type_name]
    cls = registry.backend_class(type_name)
    assert cls.type_name == type_name
    assert cls.has_weights == declaration.weights, f"{cls.__name__}.has_weights vs `weights:` in {declaration.path}"
    backend = registry.build_backend({"type": type_name})
    assert declaration.network == (cls.has_weights and backend.needs_audio)
    if declaration.sample_rate is None:
        assert not backend.needs_audio and backend.sample_rate == 0
    else:
        assert backend.sample_rate == declaration.sample_rate
    window = backend.window_seconds
    if declaration.window_seconds is None:
        assert window is None
    else:
        assert window is not None and math.isclose(window, declaration.window_seconds, rel_tol=1e-12)
    assert declaration.has_layers({}) == (len(backend.layer_names) > 1)
    assert (ROOT / "envs" / f"{declaration.env}.yaml").is_file()


def test_schema_is_the_file_plus_the_declarations() -> None:
    schema = load_config_schema(ROOT)
    jsonschema.Draft202012Validator.check_schema(schema)
    backend = schema["$defs"]["backend"]
    assert backend["properties"]["type"]["enum"] == sorted(registry.BACKEND_TYPES)
    blocks = {b["if"]["properties"]["type"]["const"]: b["then"]["properties"] for b in backend["allOf"]}
    assert blocks == {name: d.settings for name, d in DECLARATIONS.items()}


def _validator(schema: dict) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema)


def test_a_type_setting_is_checked_and_a_misspelt_one_refused() -> None:
    validator = _validator(load_config_schema(ROOT))
    ok = {"datasets": {"d": {"format": "synthetic"}}, "models": {"pop": {"type": "pop"}},
          "backends": {"m": {"type": "musicfm", "variant": "fma"}}}
    assert not list(validator.iter_errors(ok))
    bad = {**ok, "backends": {"m": {"type": "musicfm", "variant": "gtzan", "varient": 1}}}
    messages = " ".join(e.message for e in validator.iter_errors(bad))
    assert "gtzan" in messages and "varient" in messages
    other = {**ok, "backends": {"m": {"type": "mert", "variant": "fma"}}}  # musicfm's setting, not mert's
    assert list(validator.iter_errors(other))
    unknown = {**ok, "backends": {"m": {"type": "wav2vec9"}}}
    assert any("wav2vec9" in e.message for e in validator.iter_errors(unknown))


def test_a_new_declaration_extends_the_schema(tmp_path: Path) -> None:
    (tmp_path / "toy.yaml").write_text(
        "type: toy\nclass: toy_backend:Toy\ndescription: a toy\nsample_rate: 8000\nwindow_seconds: null\n"
        "weights: false\nnetwork: false\nlayered: false\nenv: extract\n"
        "settings:\n  gain: {type: number, default: 1.0, description: multiplier}\n"
    )
    declarations = read_declarations(tmp_path)
    schema = config_schema(load_config_schema(ROOT), declarations)
    validator = _validator(schema)
    base = {"datasets": {"d": {"format": "synthetic"}}, "models": {"pop": {"type": "pop"}}}
    assert not list(validator.iter_errors({**base, "backends": {"t": {"type": "toy", "gain": 2.0}}}))
    assert list(validator.iter_errors({**base, "backends": {"t": {"type": "toy", "gain": "loud"}}}))


MERT = (ROOT / "src" / "audiorec" / "backends" / "mert.yaml").read_text()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (MERT, "must equal the file name"),  # saved as bad.yaml, says type: mert
        (MERT.replace("type: mert", "type: bad").replace("audiorec.backends.mert:MERTBackend", "nocolon"), "`class`"),
        (MERT.replace("type: mert", "type: bad").replace("env: extract", "envs: extract"), "missing \\['env'\\]"),
        ("- a list\n", "must be a mapping"),
        ("type: bad\n  : :\n", "not valid YAML"),
    ],
)
def test_a_malformed_declaration_names_its_file(tmp_path: Path, text: str, fragment: str) -> None:
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(DeclarationError, match=fragment) as err:
        read_declarations(tmp_path)
    assert "bad.yaml" in str(err.value)


def test_a_wrongly_typed_fact_is_refused(tmp_path: Path) -> None:
    (tmp_path / "mert.yaml").write_text(MERT.replace("network: true", "network: yes please"))
    with pytest.raises(DeclarationError, match="`network` must be true or false"):
        read_declarations(tmp_path)


def test_declarations_module_needs_only_stdlib_and_yaml() -> None:
    """rules/common.smk loads it by path in Snakemake's interpreter, which may lack torch."""
    tree = ast.parse((ROOT / "src" / "audiorec" / "backends" / "declarations.py").read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert names - set(sys.stdlib_module_names) - {"__future__"} == {"yaml"}


def test_common_smk_keeps_no_hand_written_type_list() -> None:
    text = (ROOT / "rules" / "common.smk").read_text()
    assert "import audiorec" not in text and "from audiorec" not in text
    for name in DECLARATIONS:
        if name in ("oracle", "mfcc"):  # their dataset-file inputs are named in backend_metadata_files
            continue
        assert f'"{name}"' not in text, f"rules/common.smk names backend type {name}; declare it instead"

"""The conda envs (one per job family) stay valid, pinned, and consistent with pyproject.toml.

Conda channels are unreachable here, so `--use-conda` cannot be exercised; what can be
checked is that every env file parses, pins exact versions from conda-forge, and that
each pin satisfies the range pyproject.toml gives the pip install.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ENV_FILES = sorted((ROOT / "envs").glob("*.yaml"))

# conda-forge package name -> PyPI name, where they differ
CONDA_TO_PIP = {
    "pytorch": "torch",
    "pysoundfile": "soundfile",
    "soxr-python": "soxr",
    "matplotlib-base": "matplotlib",
}
PIN = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)\s*(?:=|==)\s*(?P<version>[0-9][^\s=<>!,]*)$")


def _pyproject_requirements() -> dict[str, Requirement]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    reqs = [Requirement(r) for r in data["project"]["dependencies"]]
    for extra in data["project"].get("optional-dependencies", {}).values():
        reqs += [Requirement(r) for r in extra]
    return {r.name.lower().replace("_", "-"): r for r in reqs}


def _conda_pins(env: dict) -> dict[str, str]:
    pins = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):  # a `pip:` sub-list
            continue
        m = PIN.match(dep.strip())
        assert m, f"unpinned or malformed conda dependency {dep!r}: pin it as name=X.Y.Z"
        pins[m["name"].lower()] = m["version"]
    return pins


def test_there_is_one_env_per_job_family() -> None:
    names = {p.stem for p in ENV_FILES}
    assert {"core", "extract", "train"} <= names


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_is_pinned_conda_forge_and_agrees_with_pyproject(env_file: Path) -> None:
    env = yaml.safe_load(env_file.read_text())
    assert set(env) >= {"name", "channels", "dependencies"}, f"{env_file.name}: missing keys"
    assert env["channels"][0] == "conda-forge", f"{env_file.name}: conda-forge must come first"
    pins = _conda_pins(env)
    assert "python" in pins, f"{env_file.name}: pin python"
    requirements = _pyproject_requirements()
    checked = 0
    for conda_name, version in pins.items():
        pip_name = CONDA_TO_PIP.get(conda_name, conda_name).replace("_", "-")
        req = requirements.get(pip_name)
        if req is None:
            continue
        checked += 1
        assert req.specifier.contains(Version(version), prereleases=True), (
            f"{env_file.name} pins {conda_name}={version}, outside pyproject's {req}"
        )
    assert checked >= 3, f"{env_file.name}: expected most packages to be pyproject dependencies"


def test_pinned_versions_agree_across_envs() -> None:
    """One version of a package everywhere, so every job family computes with the same code."""
    seen: dict[str, tuple[str, str]] = {}
    for env_file in ENV_FILES:
        for name, version in _conda_pins(yaml.safe_load(env_file.read_text())).items():
            if name in seen:
                assert seen[name][0] == version, (
                    f"{name} pinned {seen[name][0]} in {seen[name][1]} but {version} in {env_file.name}"
                )
            else:
                seen[name] = (version, env_file.name)


def test_every_rule_names_an_existing_env() -> None:
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        for rel in re.findall(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()):
            assert (smk.parent / rel).resolve().is_file(), f"{smk.name}: conda env {rel} does not exist"


# --- every package a job imports is in its rule's env ---
#
# A rule's script imports the library, which imports third-party packages, some only inside
# functions. The test follows every import statement (module level and inside functions)
# from each rule's script through src/audiorec, plus the library's lazy imports (the backend
# registry's module names, a package loading its own submodules by name), and requires each
# third-party package reached to be pinned in that rule's env file.

SRC = ROOT / "src"
RULES = ROOT / "rules"
#: import name -> conda-forge package, where they differ
IMPORT_TO_CONDA = {
    "torch": "pytorch",
    "soundfile": "pysoundfile",
    "soxr": "soxr-python",
    "yaml": "pyyaml",
    "matplotlib": "matplotlib-base",
    "PIL": "pillow",
    "sklearn": "scikit-learn",
}
#: imported by the library, provided by Snakemake's own interpreter, not the job env
NOT_JOB_IMPORTS = {"snakemake"}


def _module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _guarded(tree: Any) -> set[int]:
    """ids of import nodes inside `try: ... except ImportError` that carries on without the
    package (an optional dependency); a handler that raises makes it a requirement."""
    import ast

    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            handlers = [h for h in node.handlers if h.type is not None and ast.unparse(h.type) in IMPORT_ERRORS]
            if handlers and not any(isinstance(n, ast.Raise) for h in handlers for n in ast.walk(h)):
                out |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return out


IMPORT_ERRORS = {"ImportError", "ModuleNotFoundError", "(ImportError, ModuleNotFoundError)"}


def _imports_of(path: Path, module: str, top_level_only: bool = False) -> tuple[set[str], set[str]]:
    """(audiorec modules, third-party top-level names) one file imports, lazily or not;
    `top_level_only`: only what importing the module runs (not function bodies)."""
    import ast
    import sys

    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    optional = _guarded(tree)
    ours: set[str] = set()
    theirs: set[str] = set()

    def add(name: str) -> None:
        top = name.split(".")[0]
        if top == "audiorec":
            parts = name.split(".")
            # the longest prefix that is a module: `from audiorec.x import name` imports audiorec.x
            while parts and _module_file(".".join(parts)) is None:
                parts.pop()
            if parts:
                ours.add(".".join(parts))
        elif top not in sys.stdlib_module_names and top != "__future__":
            theirs.add(top)

    nodes = ast.walk(tree) if not top_level_only else iter(
        n for stmt in tree.body if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in ast.walk(stmt)
    )
    for node in nodes:
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            add(target)
            for alias in node.names:  # `from package import submodule`
                add(f"{target}.{alias.name}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # the registry's lazy "audiorec.backends.x:Class" names
            match = re.fullmatch(r"(audiorec(?:\.\w+)+):\w+", node.value)
            if match:
                add(match[1])
    if "read_declarations()" in path.read_text():
        # the registry's lazy imports: the classes the backend declarations name
        from audiorec.backends.declarations import read_declarations

        ours |= {d.module for d in read_declarations().values()}
    if "importlib.import_module" in path.read_text() and path.name == "__init__.py":
        # a package importing its own submodules by name (audiorec.data.synthetic)
        ours |= {f"{module}.{p.stem}" for p in path.parent.glob("*.py") if p.name != "__init__.py"}
    return ours, theirs


def _third_party_reached(script: Path, shallow_modules: set[str] = frozenset()) -> dict[str, str]:
    """Third-party packages a script reaches -> the audiorec module (or script) importing it.
    Of `shallow_modules` only what importing them runs counts (their functions never run in
    this job: a backend whose extraction has its own env, seen by a job of another env)."""
    ours, theirs = _imports_of(script, "__script__")
    found = {name: script.name for name in theirs}
    seen: set[str] = set()
    todo = list(ours)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        # importing a.b.c runs a/__init__ and a/b/__init__ too
        parents = [".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 1)]
        todo += [p for p in parents if p not in seen]
        path = _module_file(module)
        if path is None:
            continue
        more, third = _imports_of(path, module, top_level_only=module in shallow_modules)
        todo += list(more - seen)
        for name in third:
            found.setdefault(name, module)
    return found


def _rule_blocks() -> dict[str, dict[str, str]]:
    """rule name -> {"script": path, "conda": env path or the name of an env function},
    `use rule a as b with:` inheriting a's."""
    rules: dict[str, dict[str, str]] = {}
    for smk in sorted(RULES.glob("*.smk")):
        text = smk.read_text()
        for match in re.finditer(r"^(?:rule (\w+):|use rule (\w+) as (\w+) with:)\n((?:[ \t]+.*\n|\n)*)", text, re.M):
            name, parent, child, body = match[1], match[2], match[3], match[4]
            entry = dict(rules[parent]) if parent else {}
            for key in ("script", "conda"):
                value = re.search(rf"^\s+{key}:\s*\n(?:\s*#.*\n)*\s+(\"[^\"]+\"|\w+)", body, re.M)
                if value:
                    raw = value[1]
                    entry[key] = str((smk.parent / raw.strip('"')).resolve()) if raw.startswith('"') else raw
            rules[child or name] = entry
    return rules


def _own_env_types() -> dict[str, str]:
    """Backend types whose jobs run in their own env (declaration `env:`), with that env."""
    from audiorec.backends.declarations import read_declarations

    return {t: d.env for t, d in read_declarations().items() if d.env != "extract"}


def _env_packages(env_file: Path) -> set[str]:
    env = yaml.safe_load(env_file.read_text())
    names = set(_conda_pins(env))
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            names |= {Requirement(r).name.lower() for r in dep.get("pip", [])}
    return names


def _jobs_and_envs() -> list[tuple[str, Path, Path, set[str]]]:
    """(rule, script, env file, modules whose functions never run there) for every rule with
    a script; an env chosen per backend (rules/common.smk: backend_env) counts once per env
    it picks. Backends with their own env (OWN_ENV_BACKEND_TYPES) only load and embed in it."""
    own = _own_env_types()
    from audiorec.backends.registry import BACKEND_TYPES

    own_modules = {BACKEND_TYPES[t].split(":")[0] for t in own}
    out = []
    for rule, entry in _rule_blocks().items():
        if "script" not in entry:
            continue
        assert "conda" in entry, f"rule {rule} has no conda: env"
        script = Path(entry["script"])
        if entry["conda"].endswith(".yaml"):
            env = Path(entry["conda"])
            out.append((rule, script, env, set() if env.stem in own.values() else own_modules))
        else:
            assert entry["conda"] == "backend_env", f"rule {rule}: unknown env function {entry['conda']}"
            out.append((rule, script, ROOT / "envs" / "extract.yaml", own_modules))
            out += [(rule, script, ROOT / "envs" / f"{env}.yaml", set()) for env in sorted(set(own.values()))]
    return out


def test_every_rule_with_a_script_has_a_conda_env() -> None:
    rules = _rule_blocks()
    assert {"synthesize", "tracks", "split", "embed_shard", "embed", "train", "evaluate", "report"} <= set(rules)
    missing = [name for name, entry in rules.items() if "script" in entry and "conda" not in entry]
    assert not missing, f"rules without conda: {missing}"


@pytest.mark.parametrize("rule,script,env_file,excluded", _jobs_and_envs(), ids=lambda v: v if isinstance(v, str) else None)
def test_every_package_a_job_imports_is_in_its_env(rule: str, script: Path, env_file: Path, excluded: set[str]) -> None:
    assert env_file.is_file(), f"rule {rule}: {env_file} does not exist"
    available = _env_packages(env_file)
    reached = _third_party_reached(script, excluded)
    assert len(reached) >= 2, f"rule {rule}: the import walk found almost nothing ({reached}); is it broken?"
    missing = {
        name: via
        for name, via in reached.items()
        if name not in NOT_JOB_IMPORTS and IMPORT_TO_CONDA.get(name, name).lower().replace("_", "-") not in
        {a.replace("_", "-") for a in available}
    }
    assert not missing, f"rule {rule} ({script.name}) runs in {env_file.name}, which lacks {missing} (package: imported by)"


def test_the_import_walk_sees_lazy_and_function_level_imports() -> None:
    """The walk must reach what only runs on demand, or the check above proves little."""
    reached = _third_party_reached(ROOT / "scripts" / "embed_shard.py")
    assert {"transformers", "librosa", "soxr", "safetensors", "huggingface_hub", "h5py"} <= set(reached), reached
    assert {"jukebox", "accelerate"} <= set(reached)  # through the registry, in function bodies
    shallow = _third_party_reached(ROOT / "scripts" / "embed_shard.py", {"audiorec.backends.jukebox"})
    assert "jukebox" not in shallow and "torch" in shallow
    # an optional import (try/except ImportError) is not a requirement
    assert "torch" not in _third_party_reached(ROOT / "scripts" / "split.py")

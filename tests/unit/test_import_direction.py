"""The library imports forward only: nothing in `audiorec.report` reaches `audiorec.analysis`
(which builds on the report's tables), so the two never form an import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "audiorec"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the module's package
                package = path.relative_to(SRC.parent).with_suffix("").parts[: -node.level]
                base = ".".join(package + ((base,) if base else ()))
            found.add(base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_report_never_imports_analysis():
    offenders = {
        str(path.relative_to(SRC)): sorted(m for m in _imports(path) if m.startswith("audiorec.analysis"))
        for path in (SRC / "report").rglob("*.py")
    }
    assert not {k: v for k, v in offenders.items() if v}

"""The domain stays pure: standard library and its own modules, nothing else."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pipworks_mtbridge.domain as domain

FORBIDDEN_STDLIB = {"asyncio", "socket", "subprocess", "os", "io", "sqlite3", "urllib", "http"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_domain_imports_no_infrastructure() -> None:
    modules = sorted(Path(domain.__file__).parent.glob("*.py"))
    assert len(modules) > 5
    for module in modules:
        for name in _imports(module):
            top = name.split(".")[0]
            if top.startswith("pipworks"):
                assert name.startswith("pipworks_mtbridge.domain"), f"{module.name} imports {name}"
            else:
                assert top not in FORBIDDEN_STDLIB, f"{module.name} imports {name}"
                assert top in sys.stdlib_module_names, f"{module.name} imports third-party {name}"

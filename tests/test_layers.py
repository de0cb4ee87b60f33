"""Every service's domain layer stays pure: standard library (no I/O modules), its own
modules and the platform's pure error and money types, nothing else. New services are
covered as soon as they have a ``domain`` package."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DOMAINS = sorted(REPO_ROOT.glob("services/*/pipworks_*/domain"))
ALLOWED_PLATFORM = ("pipworks_platform.errors", "pipworks_platform.money")
FORBIDDEN_STDLIB = {"asyncio", "socket", "subprocess", "os", "io", "sqlite3", "urllib", "http"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_domains_are_found() -> None:
    assert {d.parent.name for d in DOMAINS} >= {"pipworks_identity", "pipworks_mtbridge"}


@pytest.mark.parametrize("domain", DOMAINS, ids=lambda d: d.parent.name)
def test_the_domain_imports_no_infrastructure(domain: Path) -> None:
    own = f"{domain.parent.name}.domain"
    for module in sorted(domain.rglob("*.py")):
        for name in _imports(module):
            top = name.split(".")[0]
            if top.startswith("pipworks"):
                assert name.startswith((own, *ALLOWED_PLATFORM)), f"{module.name} imports {name}"
            else:
                assert top in sys.stdlib_module_names, f"{module.name} imports {name}"
                assert top not in FORBIDDEN_STDLIB, f"{module.name} imports {name}"

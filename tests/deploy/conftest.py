"""Render the Helm chart with the real Helm engine (helm-python-sdk binds Helm's Go SDK).

Renders are cached per values file for the worker: the engine is deterministic, and each
test only reads the objects.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from kubernetes_validate.utils import latest_version

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "deploy" / "helm" / "pipworks"
RELEASE = "pw"
NAMESPACE = "pipworks"
KUBE_VERSION = latest_version()  # the newest Kubernetes the validator bundles


@dataclass(frozen=True)
class Rendered:
    """The objects of one render, keyed for the assertions."""

    manifests: dict[str, str]
    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        matches = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(matches) == 1, f"{kind}/{name}: {len(matches)} objects"
        return matches[0]

    def component(self, kind: str, component: str) -> dict[str, Any]:
        return self.named(kind, f"{RELEASE}-pipworks-{component}")

    @property
    def notes(self) -> str:
        return self.manifests["pipworks/templates/NOTES.txt"]


def load_values(*files: str) -> dict[str, Any]:
    """values.yaml with each file laid over it, as ``helm -f`` composes them."""
    merged: dict[str, Any] = {}
    for name in ("values.yaml", *files):
        merged = _deep_merge(merged, yaml.safe_load((CHART / name).read_text()) or {})
    return merged


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def render(values: dict[str, Any] | None = None, *, is_upgrade: bool = False) -> Rendered:
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(
            values,
            name=RELEASE,
            namespace=NAMESPACE,
            is_install=not is_upgrade,
            is_upgrade=is_upgrade,
        )
    objects = []
    for path, text in sorted(manifests.items()):
        if not path.endswith(".yaml"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return Rendered(manifests, objects)


@functools.cache
def _cached_render(files: tuple[str, ...]) -> Rendered:
    return render(load_values(*files))


@pytest.fixture(scope="session")
def rendered() -> Callable[..., Rendered]:
    """``rendered()`` is the default values; ``rendered("values-dev.yaml")`` a values file."""

    def get(*files: str) -> Rendered:
        return _cached_render(tuple(files))

    return get

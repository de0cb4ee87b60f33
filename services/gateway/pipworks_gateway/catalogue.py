"""The APIs the gateway knows, from the generated proto modules.

The gateway forwards messages as it received them, but it needs each method's streaming
shape (to pick the right handler), its request type (to refuse bytes that do not
decode), its ``(pipworks.common.v1.policy)`` (read by the platform's auth interceptor
from the default descriptor pool) and the service list for reflection. Importing every
generated ``pipworks.<area>.<version>`` module registers all of them in the default
pool; a method the gateway has no descriptor for cannot be authorised and is answered
UNIMPLEMENTED.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import ModuleType

from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

ROOT_PACKAGE = "pipworks"
_VERSION = re.compile(r"v\d+((alpha|beta)\d*)?")


@dataclass(frozen=True, slots=True)
class MethodShape:
    """A proxied method: its path, whether each side streams and its request type."""

    path: str  # "/pipworks.ib.v1.IbService/GetServiceInfo"
    service: str
    client_streaming: bool
    server_streaming: bool
    request_type: type[Message]


class Catalogue:
    def __init__(self, services: Mapping[str, ServiceDescriptor]) -> None:
        self._services = dict(services)

    @classmethod
    def load(cls, root: str = ROOT_PACKAGE) -> Catalogue:
        """Import every generated ``<root>.<area>.<version>`` package and index its services."""
        services: dict[str, ServiceDescriptor] = {}
        for module in _generated_modules(root):
            for service in module.DESCRIPTOR.services_by_name.values():
                services[service.full_name] = service
        return cls(services)

    @property
    def service_names(self) -> list[str]:
        return sorted(self._services)

    def methods(self, service: str) -> Iterator[MethodShape]:
        descriptor = self._services[service]
        for method in descriptor.methods:
            yield MethodShape(
                path=f"/{service}/{method.name}",
                service=service,
                client_streaming=method.client_streaming,
                server_streaming=method.server_streaming,
                request_type=GetMessageClass(method.input_type),
            )


def _generated_modules(root: str) -> Iterator[ModuleType]:
    root_module = importlib.import_module(root)
    for area in pkgutil.iter_modules(root_module.__path__):
        if not area.ispkg:
            continue
        area_module = importlib.import_module(f"{root}.{area.name}")
        for version in pkgutil.iter_modules(area_module.__path__):
            if not (version.ispkg and _VERSION.fullmatch(version.name)):
                continue
            package = f"{root}.{area.name}.{version.name}"
            package_module = importlib.import_module(package)
            for info in pkgutil.iter_modules(package_module.__path__):
                if info.name.endswith("_pb2"):
                    yield importlib.import_module(f"{package}.{info.name}")

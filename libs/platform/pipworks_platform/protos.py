"""Loading generated proto modules so their descriptors are in the default pool."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache


@cache
def load_proto_package(package: str) -> bool:
    """Import every ``*_pb2`` module of a generated package such as ``pipworks.ib.v1``.

    Returns False when the package does not exist. Cached: each package loads once.
    """
    try:
        module = importlib.import_module(package)
    except ImportError:
        return False
    for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
        if info.name.endswith("_pb2"):
            importlib.import_module(f"{package}.{info.name}")
    return True

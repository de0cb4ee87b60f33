"""Gateway: the one public gRPC endpoint; authenticates, rate-limits and routes every call."""

from importlib.metadata import version

__version__ = version("pipworks-gateway")

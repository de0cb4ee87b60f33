"""Compile the test-only echo_service.proto (package pipworks.gatewaytest.v1)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).parent / "protos"
API_PROTOS = Path(__file__).resolve().parents[2] / "proto"
PACKAGE_DIR = Path("pipworks/gatewaytest/v1")


def build(out_dir: Path) -> Path:
    """Generate the modules under ``out_dir``, as regular packages the gateway can discover."""
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{API_PROTOS}",
        f"-I{resources.files('grpc_tools') / '_proto'}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(PROTO_ROOT / PACKAGE_DIR / "echo_service.proto"),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed on echo_service.proto")
    for package in (PACKAGE_DIR.parent, PACKAGE_DIR):
        (out_dir / package / "__init__.py").touch()
    return out_dir

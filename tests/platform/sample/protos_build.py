"""Compile the test-only notes.proto into a directory importable by tests and subprocesses."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

PROTO_ROOT = Path(__file__).parent / "protos"
API_PROTOS = Path(__file__).resolve().parents[3] / "proto"


def build(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{API_PROTOS}",
        f"-I{resources.files('grpc_tools') / '_proto'}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(PROTO_ROOT / "pipworks/testing/v1/notes.proto"),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed on notes.proto")
    return out_dir


def ensure_importable(out_dir: Path) -> None:
    """Put the generated ``pipworks.testing`` next to the installed ``pipworks`` package."""
    import pipworks

    package_dir = out_dir / "pipworks"
    if str(package_dir) not in pipworks.__path__:
        pipworks.__path__.append(str(package_dir))
    if str(out_dir) not in sys.path:
        sys.path.append(str(out_dir))

"""Compile test-only protos (which may import Pipworks' own) into an importable directory."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

API_PROTOS = Path(__file__).resolve().parents[1] / "proto"


def compile_protos(proto_root: Path, proto: Path, out_dir: Path) -> Path:
    """Generate Python for ``proto`` (relative to ``proto_root``) under ``out_dir``.

    Every generated directory gets an ``__init__.py`` so code that discovers packages by
    walking them (the gateway's catalogue) finds the test services too.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{proto_root}",
        f"-I{API_PROTOS}",
        f"-I{resources.files('grpc_tools') / '_proto'}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(proto_root / proto),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {proto}")
    package = proto.parent
    while len(package.parts) > 1:  # pipworks/ itself extends the installed package
        (out_dir / package / "__init__.py").touch()
        package = package.parent
    return out_dir


def ensure_importable(out_dir: Path) -> None:
    """Put the generated ``pipworks.<test package>`` next to the installed ``pipworks``."""
    import pipworks

    package_dir = out_dir / "pipworks"
    if str(package_dir) not in pipworks.__path__:
        pipworks.__path__.append(str(package_dir))
    if str(out_dir) not in sys.path:
        sys.path.append(str(out_dir))

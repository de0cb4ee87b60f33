"""The Dockerfile, checked statically (no container engine on these machines)."""

from __future__ import annotations

import importlib
import re
import tomllib

from tests.deploy.conftest import REPO_ROOT

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
INSTRUCTIONS = [
    line.strip()
    for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


def _stages() -> list[list[str]]:
    stages: list[list[str]] = []
    for line in INSTRUCTIONS:
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_every_base_image_is_pinned_by_digest():
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", DOCKERFILE, flags=re.MULTILINE))
    froms = [line.split()[1] for line in INSTRUCTIONS if line.upper().startswith("FROM ")]
    assert len(froms) == 2
    for image in froms:
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", resolved)


def test_multi_stage_build_with_uv_and_generated_protos():
    builder, runtime = _stages()
    builder_text = "\n".join(builder)
    assert "uv sync --frozen --no-dev --package pipworks-cli" in builder_text
    assert "--all-packages" not in builder_text  # the devstack's embedded servers stay out
    assert "grpc_tools.protoc" in builder_text
    assert "--no-editable" in builder_text
    runtime_text = "\n".join(runtime)
    # The final stage copies the built environment; no compilers or package tools run there.
    assert "COPY --from=builder" in runtime_text
    for tool in ("apt-get", "gcc", "build-essential", "pip install", "uv "):
        assert tool not in runtime_text, tool


def test_the_final_stage_runs_as_a_numeric_non_root_user():
    _, runtime = _stages()
    users = [line.split()[1] for line in runtime if line.upper().startswith("USER ")]
    assert users, "no USER in the final stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0
    assert f"--uid {uid}" in "\n".join(runtime)
    # The chart's pod security context runs the same uid.
    helpers = (REPO_ROOT / "deploy/helm/pipworks/templates/_helpers.tpl").read_text()
    assert f"runAsUser: {uid}" in helpers


def test_the_entry_point_is_the_pipworks_command_and_it_exists():
    (entry,) = [line for line in INSTRUCTIONS if line.upper().startswith("ENTRYPOINT")]
    assert entry == 'ENTRYPOINT ["pipworks"]'
    project = tomllib.loads((REPO_ROOT / "libs/cli/pyproject.toml").read_text())
    target = project["project"]["scripts"]["pipworks"]
    module, _, function = target.partition(":")
    main = getattr(importlib.import_module(module), function)
    assert callable(main)
    from pipworks_cli.__main__ import SERVICES

    assert set(SERVICES) == {"gateway", "identity", "kyc", "ib", "antifraud", "mtbridge"}


def test_the_build_context_leaves_out_local_state():
    ignore = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    for pattern in (".venv", ".data", "node_modules", ".gitignore", "libs/protos/pipworks/*/"):
        assert pattern in ignore, pattern
    assert "!proto/**" in ignore

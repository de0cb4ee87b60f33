# syntax=docker/dockerfile:1
#
# One image for every Pipworks service. The entry point is the `pipworks` command:
#   pipworks serve identity          start a service by name
#   pipworks migrate identity        apply its migrations and exit (the Helm hook Job)
#   pipworks verify-audit identity   check its hash-chained audit log
#   pipworks serve mt5sim --port N   the MT5 Web API simulator (development only)
#
# Build: docker build -t pipworks:dev .
# Both stages use the same base, pinned by digest (python:3.11-slim-bookworm), so the
# virtual environment built in the first stage finds the same interpreter in the second.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:a36c24f9cbdf4fd0f52d67f0823eeac19c2028c637cecc392d97f980d4fec56b

# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ARG UV_VERSION=0.13.9
ARG GRPCIO_TOOLS_VERSION=1.81.1
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN pip install "uv==${UV_VERSION}"
WORKDIR /src

# Third-party dependencies first: this layer is reused until the lock file changes.
COPY pyproject.toml uv.lock README.md ./
COPY libs/platform/pyproject.toml libs/platform/
COPY libs/protos/pyproject.toml libs/protos/
COPY libs/devstack/pyproject.toml libs/devstack/
COPY libs/cli/pyproject.toml libs/cli/
COPY services/gateway/pyproject.toml services/gateway/
COPY services/identity/pyproject.toml services/identity/
COPY services/kyc/pyproject.toml services/kyc/
COPY services/ib/pyproject.toml services/ib/
COPY services/antifraud/pyproject.toml services/antifraud/
COPY services/mtbridge/pyproject.toml services/mtbridge/
# Only what the `pipworks` command needs: no development tools, no embedded servers.
RUN uv sync --frozen --no-dev --package pipworks-cli --no-install-workspace

# Generated protos: made here with grpcio-tools (a build-only tool kept out of the image).
COPY proto proto
COPY libs libs
COPY services services
RUN uv venv /opt/protoc \
 && uv pip install --python /opt/protoc "grpcio-tools==${GRPCIO_TOOLS_VERSION}" \
 && rm -rf libs/protos/pipworks/*/ \
 && /opt/protoc/bin/python -m grpc_tools.protoc -I proto \
      --python_out=libs/protos --grpc_python_out=libs/protos \
      $(find proto -name '*.proto' | sort) \
 && find libs/protos/pipworks -mindepth 1 -type d -exec touch {}/__init__.py \;

# The workspace packages, installed as wheels (not editable) so /src is not needed later.
RUN uv sync --frozen --no-dev --package pipworks-cli --no-editable

# Fail the build, not the pod, when something is missing from the environment.
WORKDIR /
RUN /app/.venv/bin/python -c "import pipworks.identity.v1.identity_service_pb2, pipworks.common.v1.auth_pb2" \
 && /app/.venv/bin/pipworks --help > /dev/null

# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="pipworks" \
      org.opencontainers.image.description="Pipworks back office services (one image, service chosen by name)" \
      org.opencontainers.image.source="https://github.com/pipworks/pipworks" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric uid/gid so `runAsNonRoot` can be verified by the kubelet.
RUN groupadd --system --gid 10001 pipworks \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin pipworks

COPY --from=builder --chown=0:0 /app/.venv /app/.venv

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIPWORKS_GRPC_ADDRESS=0.0.0.0:50051 \
    PIPWORKS_METRICS_PORT=9464

WORKDIR /app
USER 10001:10001
EXPOSE 50051 9464

ENTRYPOINT ["pipworks"]
CMD ["--help"]

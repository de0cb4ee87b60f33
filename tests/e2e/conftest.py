"""The suite as it runs in production, on this machine, every service its own process on
real PostgreSQL and NATS. Callers talk to the gateway only, as the broker's portal would.

``full_suite`` is everything ``make run`` starts (same suite file, same environment) on
free ports with its own PostgreSQL and nats-server, so a test may kill any part of it. A
module customises it by overriding ``full_suite_env``. ``suite`` is a smaller one
(identity, ib and the gateway) on the worker's shared servers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from pipworks.identity.v1 import identity_service_pb2_grpc
from pipworks_devstack.local_suite import LocalSuite
from pipworks_devstack.testing import free_port
from pipworks_platform.crypto import format_key_entry, generate_key
from tests.helpers import wait_serving
from tests.tokens import TokenAuthority

ADMIN_EMAIL = "admin@broker.example"
ADMIN_PASSWORD = "correct-Horse-battery-staple-42"
REPO_ROOT = Path(__file__).resolve().parents[2]

# What tests change in the suite file's environment: cheap password hashing and room
# for many logins and calls from 127.0.0.1. Production defaults are in each README.
FULL_SUITE_TEST_ENV: dict[str, dict[str, str]] = {
    "identity": {
        "PIPWORKS_IDENTITY_ARGON2_TIME_COST": "1",
        "PIPWORKS_IDENTITY_ARGON2_MEMORY_KIB": "8192",
        "PIPWORKS_IDENTITY_THROTTLE_BURST": "1000",
        "PIPWORKS_IDENTITY_THROTTLE_PER_MINUTE": "1000",
    },
    "gateway": {"PIPWORKS_GATEWAY_RATE_LIMITS": "auth.ip=1000/2000,auth.subject=1000/2000"},
}


@pytest.fixture(scope="module")
def full_suite_env() -> dict[str, dict[str, str]]:
    """Extra environment per service name (``"*"``: every service) for ``full_suite``."""
    return {}


@pytest.fixture(scope="module")
def full_suite(
    tmp_path_factory: pytest.TempPathFactory, full_suite_env: dict[str, dict[str, str]]
) -> Iterator[LocalSuite]:
    """Every service of ``make run``, its own PostgreSQL and NATS; stopped after the module.

    Modules using it should keep to one xdist worker
    (``pytestmark = pytest.mark.xdist_group(...)``) so the suite starts once.
    """
    env = {name: dict(values) for name, values in FULL_SUITE_TEST_ENV.items()}
    for name, values in full_suite_env.items():
        env.setdefault(name, {}).update(values)
    with LocalSuite(tmp_path_factory.mktemp("full-suite"), repo_root=REPO_ROOT, env=env) as s:
        yield s


@dataclass
class Suite:
    authority: TokenAuthority
    ports: dict[str, int]
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def gateway(self) -> str:
        return f"127.0.0.1:{self.ports['gateway']}"

    def direct(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service]}"

    def log(self, service: str) -> str:
        return (self.logs / f"{service}.log").read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def suite(postgres, nats_server, tmp_path_factory) -> Iterator[Suite]:
    logs = tmp_path_factory.mktemp("suite-logs")
    ports = {name: free_port() for name in ("identity", "ib", "gateway")}
    suite = Suite(authority=TokenAuthority(), ports=ports, logs=logs)
    databases = {name: f"{name}_{uuid.uuid4().hex[:8]}" for name in ("identity", "ib")}
    common = {
        **os.environ,
        "PIPWORKS_NATS_URL": nats_server.url,
        "PIPWORKS_METRICS_PORT": "0",
        "PIPWORKS_IDENTITY_ADDRESS": suite.direct("identity"),
        "PIPWORKS_ENCRYPTION_KEYS": format_key_entry("e2e", generate_key()),
        "PIPWORKS_ENCRYPTION_ACTIVE_KEY": "e2e",
    }
    env = {
        "identity": {
            "PIPWORKS_DATABASE_URL": postgres.ensure_database(databases["identity"]),
            "PIPWORKS_ENVIRONMENT": "development",
            "PIPWORKS_IDENTITY_SIGNING_KEYS": suite.authority.signing_key_env(),
            "PIPWORKS_IDENTITY_ACTIVE_SIGNING_KEY": suite.authority.kid,
            "PIPWORKS_IDENTITY_BOOTSTRAP_ADMIN_EMAIL": ADMIN_EMAIL,
            "PIPWORKS_IDENTITY_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD,
            # Cheap hashing for tests; production defaults are documented in the README.
            "PIPWORKS_IDENTITY_ARGON2_TIME_COST": "1",
            "PIPWORKS_IDENTITY_ARGON2_MEMORY_KIB": "8192",
            # Every test call comes from 127.0.0.1: leave room for the whole module.
            "PIPWORKS_IDENTITY_THROTTLE_BURST": "400",
            "PIPWORKS_IDENTITY_THROTTLE_PER_MINUTE": "400",
        },
        "ib": {"PIPWORKS_DATABASE_URL": postgres.ensure_database(databases["ib"])},
        "gateway": {
            "PIPWORKS_GATEWAY_ROUTES": (
                f"pipworks.identity.v1={suite.direct('identity')},"
                f"pipworks.ib.v1={suite.direct('ib')}"
            ),
            "PIPWORKS_GATEWAY_RATE_LIMITS": "auth.ip=200/400,auth.subject=200/400",
        },
    }
    try:
        for name, extra in env.items():
            log = open(logs / f"{name}.log", "wb")  # noqa: SIM115 - the process owns it
            suite.processes[name] = subprocess.Popen(
                [sys.executable, "-m", f"pipworks_{name}"],
                env={**common, **extra, "PIPWORKS_GRPC_ADDRESS": suite.direct(name)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        for name, proc in suite.processes.items():
            wait_serving(proc, ports[name], describe=lambda name=name: suite.log(name))
        yield suite
    finally:
        for proc in suite.processes.values():
            proc.terminate()
        for proc in suite.processes.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for database in databases.values():
            postgres.drop_database(database)


@pytest.fixture(scope="module")
def gateway_channel(suite: Suite) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(suite.gateway) as channel:
        yield channel


@pytest.fixture(scope="module")
def identity(gateway_channel) -> identity_service_pb2_grpc.IdentityServiceStub:
    """IdentityService, reached through the gateway."""
    return identity_service_pb2_grpc.IdentityServiceStub(gateway_channel)

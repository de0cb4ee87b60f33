"""Every service starts as its own process on the shared runtime: migrations applied,
health SERVING, GetServiceInfo answering, clean exit on SIGTERM."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import uuid

import asyncpg
import grpc
import pytest

from pipworks_devstack.testing import free_port
from pipworks_platform.crypto import format_key_entry, generate_key
from pipworks_platform.db import libpq_dsn
from pipworks_platform.grpc_errors import error_details
from tests.helpers import health_status, wait_serving
from tests.tokens import TokenAuthority

SERVICES = {
    "identity": "IdentityService",
    "kyc": "KycService",
    "ib": "IbService",
    "antifraud": "AntifraudService",
    "mtbridge": "MtBridgeService",
}


@pytest.fixture(scope="module")
def authority() -> TokenAuthority:
    """Identity's signing key in these tests; tokens minted with it are genuine."""
    return TokenAuthority()


@pytest.fixture
def running_services(postgres, nats_url, tmp_path, authority):
    ports = {name: free_port() for name in SERVICES}
    shared = {
        "PIPWORKS_NATS_URL": nats_url,
        "PIPWORKS_METRICS_PORT": "0",
        "PIPWORKS_IDENTITY_ADDRESS": f"127.0.0.1:{ports['identity']}",
        "PIPWORKS_ENCRYPTION_KEYS": format_key_entry("t1", generate_key()),
        "PIPWORKS_ENCRYPTION_ACTIVE_KEY": "t1",
        "PIPWORKS_IDENTITY_SIGNING_KEYS": authority.signing_key_env(),
        "PIPWORKS_IDENTITY_ACTIVE_SIGNING_KEY": authority.kid,
    }
    started = {}
    for name, port in ports.items():
        database = f"{name}_{uuid.uuid4().hex[:8]}"
        url = postgres.ensure_database(database)
        env = {
            **os.environ,
            **shared,
            "PIPWORKS_DATABASE_URL": url,
            "PIPWORKS_GRPC_ADDRESS": f"127.0.0.1:{port}",
        }
        log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [sys.executable, "-m", f"pipworks_{name}"], env=env, stdout=log, stderr=log
        )
        started[name] = (proc, port, url, database, log)
    yield started
    for proc, _port, _url, database, log in started.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        postgres.drop_database(database)


async def test_each_service_serves_its_api_and_stops_cleanly(running_services, authority):
    admin = authority.metadata(roles=("admin",), aal=2)
    for name, (proc, port, url, _db, _log) in running_services.items():
        wait_serving(proc, port, describe=lambda name=name: name)
        api = f"pipworks.{name}.v1.{SERVICES[name]}"
        assert health_status(port, api) == "SERVING"
        assert health_status(port, "liveness") == "SERVING"

        pb2 = importlib.import_module(f"pipworks.{name}.v1.{name}_service_pb2")
        pb2_grpc = importlib.import_module(f"pipworks.{name}.v1.{name}_service_pb2_grpc")
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = getattr(pb2_grpc, f"{SERVICES[name]}Stub")(channel)
            with pytest.raises(grpc.RpcError) as raised:  # backends re-verify every call
                stub.GetServiceInfo(pb2.GetServiceInfoRequest(), timeout=5)
            assert error_details(raised.value).reason == "TOKEN_MISSING"
            with pytest.raises(grpc.RpcError) as raised:  # a key identity never published
                stub.GetServiceInfo(
                    pb2.GetServiceInfoRequest(),
                    metadata=TokenAuthority().metadata(roles=("admin",), aal=2),
                    timeout=5,
                )
            assert error_details(raised.value).reason == "TOKEN_INVALID"
            info = stub.GetServiceInfo(pb2.GetServiceInfoRequest(), metadata=admin, timeout=5).info
        assert info.name == name
        assert info.version == "0.1.0"
        assert list(info.api_services) == [api]
        assert info.started_at.seconds > 0

        conn = await asyncpg.connect(libpq_dsn(url))
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        await conn.close()
        assert {"outbox_events", "inbox_events", "alembic_version"} <= tables

    for name, (proc, _port, _url, _db, _log) in running_services.items():
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, name

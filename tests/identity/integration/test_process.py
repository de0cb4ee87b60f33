"""Identity as its own process: start-up with a bootstrap admin (once, however many
replicas start), events through the real outbox relay, the verify-audit command, and
refusing to start without its keys."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import grpc
import pytest

from pipworks.identity.v1 import identity_service_pb2 as pb
from pipworks.identity.v1 import identity_service_pb2_grpc as pb_grpc
from pipworks_devstack.testing import free_port
from pipworks_platform.db import libpq_dsn
from tests.helpers import eventually, wait_serving
from tests.identity.support import ADMIN_EMAIL, ADMIN_PASSWORD, env_for, running_identity

BOOTSTRAP = {
    "identity_bootstrap_admin_email": ADMIN_EMAIL,
    "identity_bootstrap_admin_password": ADMIN_PASSWORD,
}


class Processes:
    def __init__(self, database_url: str, nats_url: str, logs: Path) -> None:
        self.database_url, self.nats_url, self.logs = database_url, nats_url, logs
        self.started: list[tuple[subprocess.Popen[bytes], int]] = []

    def start(self, **overrides: str) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        log = self.logs / f"identity-{len(self.started)}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipworks_identity"],
            env=env_for(self.database_url, self.nats_url, port, **overrides),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.started.append((proc, port))
        return proc, port

    def wait(self, proc: subprocess.Popen[bytes], port: int) -> None:
        index = [p for p, _ in self.started].index(proc)
        log = self.logs / f"identity-{index}.log"
        wait_serving(proc, port, describe=lambda: log.read_text(errors="replace")[-3000:])

    def stop_all(self) -> None:
        for proc, _ in self.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc, _ in self.started:
            try:
                assert proc.wait(timeout=20) == 0
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise
        self.started.clear()


@pytest.fixture
def processes(database_url, nats_url, tmp_path) -> Iterator[Processes]:
    running = Processes(database_url, nats_url, tmp_path)
    yield running
    for proc, _ in running.started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def _count(database_url: str, query: str) -> int:
    conn = await asyncpg.connect(libpq_dsn(database_url))
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


@pytest.mark.slow
async def test_replicas_bootstrap_one_admin_and_publish_events(
    processes, database_url, nats_client
):
    started = [processes.start(**BOOTSTRAP) for _ in range(2)]  # two replicas race
    for proc, port in started:
        await asyncio.to_thread(processes.wait, proc, port)
    assert await _count(database_url, "SELECT count(*) FROM users WHERE 'admin' = ANY(roles)") == 1

    async with grpc.aio.insecure_channel(f"127.0.0.1:{started[0][1]}") as channel:
        stub = pb_grpc.IdentityServiceStub(channel)
        await stub.Register(
            pb.RegisterRequest(
                email="p@example.com", password="violet-harbour-lantern-42", country_code="GB"
            )
        )
    js = nats_client.jetstream()

    async def subjects() -> list[str]:
        try:
            sub = await js.pull_subscribe("pipworks.identity.>", stream="PIPWORKS_IDENTITY")
            return [m.subject for m in await sub.fetch(10, timeout=1)]
        except Exception:  # the stream may not exist yet, or hold fewer messages
            return []

    published = await eventually(
        subjects, until=lambda s: "pipworks.identity.v1.user.registered" in s, timeout=20
    )
    assert published.count("pipworks.identity.v1.role.changed") == 1  # the admin, once

    processes.stop_all()
    proc, port = processes.start(**BOOTSTRAP)  # a restart finds the admin and leaves it be
    await asyncio.to_thread(processes.wait, proc, port)
    processes.stop_all()
    assert await _count(database_url, "SELECT count(*) FROM users WHERE kind = 'staff'") == 1
    assert await _count(database_url, "SELECT count(*) FROM audit_log") == 1


async def test_verify_audit_command_reports_the_first_broken_link(database_url, nats_url):
    async with running_identity(database_url, nats_url, **BOOTSTRAP):
        pass  # migrated, with the bootstrap admin's entry in the audit log

    def verify() -> tuple[int, dict]:
        done = subprocess.run(
            [sys.executable, "-m", "pipworks_identity", "verify-audit"],
            env=env_for(database_url, "nats://127.0.0.1:1", 0),
            capture_output=True,
            timeout=60,
        )
        return done.returncode, json.loads(done.stdout)

    assert await asyncio.to_thread(verify) == (
        0,
        {"intact": True, "entries_checked": 1, "first_broken_sequence": 0},
    )
    conn = await asyncpg.connect(libpq_dsn(database_url))
    try:
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete")
        await conn.execute("UPDATE audit_log SET actor = 'mallory'")
    finally:
        await conn.close()
    assert await asyncio.to_thread(verify) == (
        1,
        {"intact": False, "entries_checked": 1, "first_broken_sequence": 1},
    )


def test_start_up_refuses_missing_or_bad_keys(database_url, nats_url) -> None:
    env = env_for(database_url, nats_url, free_port())
    del env["PIPWORKS_IDENTITY_SIGNING_KEYS"]
    env["PIPWORKS_IDENTITY_ARGON2_MEMORY_KIB"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "pipworks_identity"], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 2
    assert b"PIPWORKS_IDENTITY_SIGNING_KEYS: is required" in done.stderr
    assert b"PIPWORKS_IDENTITY_ARGON2_MEMORY_KIB" in done.stderr

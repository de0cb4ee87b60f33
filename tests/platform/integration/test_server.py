"""The service process: error mapping over a real socket, graceful SIGTERM shutdown,
and start-up refusing bad settings with a message that names the variable."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
import urllib.request

import asyncpg
import grpc
import pytest

from pipworks_devstack.testing import accepts_connections, free_port
from pipworks_platform.db import libpq_dsn
from pipworks_platform.grpc_errors import error_details
from tests.platform.conftest import REPO_ROOT


def _stub(port: int):
    from pipworks.testing.v1 import notes_pb2_grpc

    return notes_pb2_grpc.NotesServiceStub(grpc.insecure_channel(f"127.0.0.1:{port}"))


async def test_errors_map_to_precise_statuses_and_never_leak(
    sample_process, sample_db, token_authority
):
    from pipworks.testing.v1 import notes_pb2

    process = sample_process()
    await asyncio.to_thread(process.wait_serving)
    stub = _stub(process.port)

    with pytest.raises(grpc.RpcError) as raised:
        stub.AddNote(notes_pb2.AddNoteRequest(text=""), metadata=token_authority.metadata())
    details = error_details(raised.value)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v[0] for v in details.field_violations] == ["text"]
    assert details.domain == "pipworks.identity"
    conn = await asyncpg.connect(libpq_dsn(sample_db))
    assert await conn.fetchval("SELECT count(*) FROM notes") == 0
    assert await conn.fetchval("SELECT count(*) FROM outbox_events") == 0
    await conn.close()

    with pytest.raises(grpc.RpcError) as raised:
        stub.Fail(notes_pb2.FailRequest(kind="not_found"))
    details = error_details(raised.value)
    assert details.code == grpc.StatusCode.NOT_FOUND
    assert details.reason == "NOT_FOUND"

    with pytest.raises(grpc.RpcError) as raised:
        stub.Fail(notes_pb2.FailRequest(kind="crash"))
    details = error_details(raised.value)
    assert details.code == grpc.StatusCode.INTERNAL
    assert "hunter2" not in (raised.value.details() or "")
    assert "Traceback" not in (raised.value.details() or "")
    assert "RuntimeError" in process.logs()  # logged for operators, not sent to callers


async def test_undecodable_request_bytes_are_invalid_argument_not_unknown(
    sample_process, sample_db, token_authority
):
    process = sample_process()
    await asyncio.to_thread(process.wait_serving)
    with grpc.insecure_channel(f"127.0.0.1:{process.port}") as channel:
        add_note = channel.unary_unary("/pipworks.testing.v1.NotesService/AddNote")
        for garbage in (b"\xff\xff\xff", b"\x0a\x80", b"\x0b" * 200):
            with pytest.raises(grpc.RpcError) as raised:
                add_note(garbage, metadata=token_authority.metadata(), timeout=10)
            details = error_details(raised.value)
            assert details.code == grpc.StatusCode.INVALID_ARGUMENT
            assert details.reason == "MALFORMED_REQUEST"
            assert "pipworks.testing.v1.AddNoteRequest" in (raised.value.details() or "")
    conn = await asyncpg.connect(libpq_dsn(sample_db))
    assert await conn.fetchval("SELECT count(*) FROM notes") == 0
    await conn.close()
    assert process.health() == "SERVING"


async def test_sigterm_reports_not_serving_then_finishes_in_flight_calls(sample_process):
    from pipworks.testing.v1 import notes_pb2

    process = sample_process(
        PIPWORKS_SHUTDOWN_DRAIN_SECONDS="1.0", PIPWORKS_SHUTDOWN_GRACE_SECONDS="5"
    )
    await asyncio.to_thread(process.wait_serving)
    assert process.health("liveness") == "SERVING"
    assert process.health("pipworks.testing.v1.NotesService") == "SERVING"

    outcome: dict[str, object] = {}

    def slow_call() -> None:
        try:
            reply = _stub(process.port).SlowEcho(
                notes_pb2.SlowEchoRequest(text="still here", seconds=2.5), timeout=10
            )
            outcome["reply"] = reply.text
        except grpc.RpcError as exc:
            outcome["error"] = exc.code()

    caller = threading.Thread(target=slow_call)
    caller.start()
    await asyncio.sleep(0.5)
    process.proc.terminate()

    statuses = []
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            statuses.append(await asyncio.to_thread(process.health))
        except grpc.RpcError:
            statuses.append("UNREACHABLE")
        if statuses[-1] == "NOT_SERVING":
            break
        await asyncio.sleep(0.05)
    assert statuses[-1] == "NOT_SERVING"  # observed over the still-open port

    await asyncio.to_thread(caller.join, 10)
    assert outcome == {"reply": "still here"}
    assert await asyncio.to_thread(process.proc.wait, 20) == 0
    assert not accepts_connections(process.port)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PIPWORKS_METRICS_PORT", "not-a-port"),
        ("PIPWORKS_GRPC_ADDRESS", "localhost"),
        ("PIPWORKS_NATS_URL", "http://127.0.0.1:4222"),
        ("PIPWORKS_DATABASE_URL", None),
    ],
)
def test_bad_settings_fail_start_up_naming_the_variable(variable, value):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPWORKS_")}
    env["PIPWORKS_TEST_PROTOS"] = os.environ["PIPWORKS_TEST_PROTOS"]
    env["PIPWORKS_DATABASE_URL"] = "postgresql+asyncpg://u:secret-pw@127.0.0.1:1/x"
    if value is None:
        env.pop(variable)
    else:
        env[variable] = value
    result = subprocess.run(
        [sys.executable, "-m", "tests.platform.sample.service"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert variable in result.stderr
    assert "secret-pw" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


async def test_metrics_endpoint_reports_rpc_latency_by_method_and_code(sample_process):
    from pipworks.testing.v1 import notes_pb2

    metrics_port = free_port()
    process = sample_process(PIPWORKS_METRICS_PORT=str(metrics_port))
    await asyncio.to_thread(process.wait_serving)
    stub = _stub(process.port)
    stub.SlowEcho(notes_pb2.SlowEchoRequest(text="x", seconds=0))
    with pytest.raises(grpc.RpcError):
        stub.Fail(notes_pb2.FailRequest(kind="not_found"))

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()

    body = await asyncio.to_thread(scrape)
    assert (
        'pipworks_rpc_server_duration_seconds_count{code="OK",'
        'method="/pipworks.testing.v1.NotesService/SlowEcho",service="identity"} 1.0'
    ) in body
    assert (
        'pipworks_rpc_server_duration_seconds_count{code="NOT_FOUND",'
        'method="/pipworks.testing.v1.NotesService/Fail",service="identity"} 1.0'
    ) in body
    assert "pipworks_outbox_backlog" in body


async def test_every_call_is_held_to_its_proto_policy(sample_process, token_authority):
    from pipworks.testing.v1 import notes_pb2

    process = sample_process()
    await asyncio.to_thread(process.wait_serving)
    stub = _stub(process.port)
    request = notes_pb2.FailRequest()

    def refused(call, **kwargs) -> tuple[grpc.StatusCode, str]:
        with pytest.raises(grpc.RpcError) as raised:
            call(request if call != stub.AddNote else notes_pb2.AddNoteRequest(text="x"), **kwargs)
        details = error_details(raised.value)
        return details.code, details.reason

    assert refused(stub.AddNote) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING")
    other_authority = type(token_authority)(kid=token_authority.kid)
    assert refused(stub.AddNote, metadata=other_authority.metadata()) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_INVALID",
    )
    client = token_authority.metadata(roles=("client",), aal=2)
    assert refused(stub.AdminOnly, metadata=client) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "MISSING_ROLE",
    )
    admin_aal1 = token_authority.metadata(roles=("admin",), aal=1)
    assert refused(stub.AdminOnly, metadata=admin_aal1) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "AAL2_REQUIRED",
    )
    admin = token_authority.metadata(roles=("admin",), aal=2)
    assert stub.AdminOnly(request, metadata=admin) == notes_pb2.FailResponse()
    assert refused(stub.Unexposed, metadata=admin) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "NO_METHOD_POLICY",
    )
    assert stub.SlowEcho(notes_pb2.SlowEchoRequest(text="public")).text == "public"

"""``python -m pipworks_devstack run`` end to end, as a developer runs it.

Each test runs the real runner in a temporary working directory (so the repository's
``.data`` is never touched) against a stand-in service module, and checks what a
developer would: the banner, health over gRPC, the environment the services get, and
that Ctrl-C leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import asyncpg
import nats
import psutil
import pytest

from pipworks_devstack.banner import READY_LINE
from pipworks_devstack.testing import accepts_connections, free_port
from tests.helpers import health_status

REPO_ROOT = Path(__file__).resolve().parents[2]
FAKE_MODULE = "tests.devstack.health_only_service"


class Runner:
    """The runner as a subprocess, its output captured in files we can poll."""

    def __init__(self, workdir: Path, config: str) -> None:
        self.workdir = workdir
        self.config_path = workdir / "suite.toml"
        self.config_path.write_text(config)
        self.stdout_path = workdir / "runner.out"
        self.stderr_path = workdir / "runner.err"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "CI": "true"}
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pipworks_devstack", "run", "--config", "suite.toml"],
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def wait_for_banner(self, timeout: float = 90.0) -> str:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            exited = self.proc.poll() is not None  # checked first: it may print, then exit
            if READY_LINE in self.stdout:
                return self.stdout
            if exited:
                pytest.fail(f"runner exited {self.proc.returncode}:\n{self.stderr}")
            time.sleep(0.1)
        pytest.fail(f"no banner within {timeout}s:\n{self.stderr}")

    def wait(self, timeout: float = 90.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self, sig: signal.Signals = signal.SIGINT, timeout: float = 90.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.wait(timeout)

    def ensure_stopped(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def runners():
    started: list[Runner] = []

    def make(workdir: Path, config: str) -> Runner:
        runner = Runner(workdir, config)
        runner.start()
        started.append(runner)
        return runner

    yield make
    for runner in started:
        runner.ensure_stopped()


def _service_block(name: str, port: int, *, database: bool = False, **env: str) -> str:
    lines = [
        "[[services]]",
        f'name = "{name}"',
        f'module = "{FAKE_MODULE}"',
        f"grpc_port = {port}",
        f"metrics_port = {free_port()}",
        f"database = {'true' if database else 'false'}",
    ]
    if env:
        pairs = ", ".join(f'{key} = "{value}"' for key, value in env.items())
        lines.append(f"env = {{ {pairs} }}")
    return "\n".join(lines) + "\n"


def _suite(*services: str, startup_timeout: int = 60) -> str:
    return (
        "[postgres]\nport = 0\n[nats]\nport = 0\nmonitor_port = 0\n"
        f"[runner]\nstartup_timeout = {startup_timeout}\nstop_timeout = 20\n" + "".join(services)
    )


def _infra_ports(banner: str) -> tuple[int, int]:
    postgres = re.search(r"PostgreSQL\s+127\.0\.0\.1:(\d+)", banner)
    nats_port = re.search(r"NATS\s+nats://127\.0\.0\.1:(\d+)", banner)
    assert postgres is not None
    assert nats_port is not None
    return int(postgres.group(1)), int(nats_port.group(1))


async def _query(url: str, sql: str) -> object:
    connection = await asyncpg.connect(url.replace("+asyncpg", "", 1))
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


def _assert_all_closed(*ports: int) -> None:
    still_open = [port for port in ports if accepts_connections(port)]
    assert still_open == []


@pytest.mark.slow
async def test_suite_comes_up_serves_and_stops_cleanly_on_ctrl_c(tmp_path: Path, runners) -> None:
    alpha_port, beta_port = free_port(), free_port()
    dump = tmp_path / "alpha-env.json"
    config = _suite(
        _service_block("alpha", alpha_port, database=True, FAKE_ENV_DUMP=str(dump))
        + "public = true\n",
        _service_block("beta", beta_port),
        '[[services]]\nname = "ghost"\nmodule = "pipworks_ghost"\n'
        f"grpc_port = {free_port()}\nmetrics_port = {free_port()}\n",
    )
    runner = runners(tmp_path, config)

    banner = runner.wait_for_banner()
    pg_port, nats_port = _infra_ports(banner)

    # The banner tells callers where to go.
    assert f"Gateway     127.0.0.1:{alpha_port}" in banner
    assert f"grpcurl -plaintext 127.0.0.1:{alpha_port} list" in banner
    assert "Skipped (module not installed): ghost" in banner
    assert "skipping ghost: module pipworks_ghost is not installed" in runner.stderr
    # Service logs pass through untouched.
    assert '{"event": "serving", "service": "pipworks-alpha"' in runner.stdout
    # Both are healthy over real gRPC.
    assert health_status(alpha_port) == "SERVING"
    assert health_status(beta_port) == "SERVING"

    # The service got a working database, NATS and keyring through its environment.
    received = json.loads(dump.read_text())
    env = received["env"]
    assert env["PIPWORKS_GRPC_ADDRESS"] == f"127.0.0.1:{alpha_port}"
    assert env["PIPWORKS_NATS_URL"] == f"nats://127.0.0.1:{nats_port}"
    assert env["PIPWORKS_ENCRYPTION_ACTIVE_KEY"] == "dev1"
    assert re.fullmatch(r"dev1:[A-Za-z0-9+/]{43}=", env["PIPWORKS_ENCRYPTION_KEYS"])
    assert env["OTEL_SERVICE_NAME"] == "pipworks-alpha"
    assert env["PIPWORKS_ENVIRONMENT"] == "development"
    assert env["PIPWORKS_DATABASE_URL"].endswith(f"@127.0.0.1:{pg_port}/alpha")
    assert await _query(env["PIPWORKS_DATABASE_URL"], "SELECT current_user") == "alpha"
    client = await nats.connect(env["PIPWORKS_NATS_URL"])
    assert client.is_connected
    await client.close()
    secrets = tmp_path / ".data" / "dev-secrets.json"
    assert secrets.stat().st_mode & 0o777 == 0o600

    assert runner.stop(signal.SIGINT) == 0

    _assert_all_closed(alpha_port, beta_port, pg_port, nats_port)
    assert not psutil.pid_exists(received["pid"])
    assert not (tmp_path / ".data" / "postgres" / "postmaster.pid").exists()
    out = runner.stdout
    # Reverse start order: beta stops before alpha.
    assert out.index('"event": "stopped", "service": "pipworks-beta"') < out.index(
        '"event": "stopped", "service": "pipworks-alpha"'
    )


@pytest.mark.slow
async def test_second_run_keeps_databases_and_secrets(tmp_path: Path, runners) -> None:
    port = free_port()
    dump = tmp_path / "env.json"
    config = _suite(_service_block("keeper", port, database=True, FAKE_ENV_DUMP=str(dump)))

    first = runners(tmp_path, config)
    first.wait_for_banner()
    first_env = json.loads(dump.read_text())["env"]
    await _query(first_env["PIPWORKS_DATABASE_URL"], "CREATE TABLE kept AS SELECT 7 AS n")
    assert first.stop(signal.SIGTERM) == 0

    second = runners(tmp_path, config)
    second.wait_for_banner()
    second_env = json.loads(dump.read_text())["env"]
    assert second_env["PIPWORKS_ENCRYPTION_KEYS"] == first_env["PIPWORKS_ENCRYPTION_KEYS"]
    # Same role and password (the port is picked afresh: the suite file says port = 0).
    credentials = first_env["PIPWORKS_DATABASE_URL"].split("@")[0]
    assert second_env["PIPWORKS_DATABASE_URL"].split("@")[0] == credentials
    assert await _query(second_env["PIPWORKS_DATABASE_URL"], "SELECT n FROM kept") == 7
    assert second.stop(signal.SIGINT) == 0


@pytest.mark.slow
def test_service_that_dies_at_start_fails_the_run(tmp_path: Path, runners) -> None:
    good, bad = free_port(), free_port()
    runner = runners(
        tmp_path,
        _suite(
            _service_block("steady", good), _service_block("broken", bad, FAKE_FAIL_AT_START="3")
        ),
    )

    assert runner.wait() == 1

    errors = runner.stderr
    assert "service 'broken' exited with code 3 before it became SERVING" in errors
    assert "fatal: refusing to start as asked by FAKE_FAIL_AT_START" in errors
    assert READY_LINE not in runner.stdout
    _assert_all_closed(good, bad)
    assert '"event": "stopped", "service": "pipworks-steady"' in runner.stdout


@pytest.mark.slow
def test_service_that_never_becomes_serving_times_out(tmp_path: Path, runners) -> None:
    port = free_port()
    runner = runners(
        tmp_path,
        _suite(_service_block("sleepy", port, FAKE_NOT_SERVING="1"), startup_timeout=2),
    )

    assert runner.wait() == 1

    assert (
        f"service 'sleepy' did not become SERVING on 127.0.0.1:{port} within 2s "
        "(last health check: NOT_SERVING)"
    ) in runner.stderr
    _assert_all_closed(port)


@pytest.mark.slow
def test_service_crash_while_running_stops_the_suite(tmp_path: Path, runners) -> None:
    crashy, calm = free_port(), free_port()
    runner = runners(
        tmp_path,
        _suite(_service_block("calm", calm), _service_block("crashy", crashy, FAKE_EXIT_AFTER="2")),
    )
    banner = runner.wait_for_banner()
    pg_port, nats_port = _infra_ports(banner)

    assert runner.wait() == 1

    assert "service 'crashy' exited with code 4 while running" in runner.stderr
    assert "crashing on purpose" in runner.stderr
    _assert_all_closed(crashy, calm, pg_port, nats_port)


def test_bad_config_is_rejected_naming_the_key(tmp_path: Path) -> None:
    (tmp_path / "suite.toml").write_text(
        _suite(_service_block("alpha", free_port()).replace("grpc_port", "grcp_port"))
    )
    result = subprocess.run(
        [sys.executable, "-m", "pipworks_devstack", "run", "--config", "suite.toml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "services[0] (alpha).grcp_port: unknown key" in result.stderr
    assert "services[0] (alpha).grpc_port: is required" in result.stderr
    assert not (tmp_path / ".data").exists()


@pytest.mark.slow
def test_non_grpc_companion_is_ready_when_its_port_listens(tmp_path: Path, runners) -> None:
    http_port, alpha_port = free_port(), free_port()
    companion = (
        '[[services]]\nname = "files"\nmodule = "http.server"\nreadiness = "tcp"\n'
        f'grpc_port = {http_port}\nargs = ["--bind", "127.0.0.1", "{http_port}"]\n'
    )
    dump = tmp_path / "alpha-env.json"
    runner = runners(
        tmp_path,
        _suite(
            companion,
            _service_block(
                "alpha",
                alpha_port,
                FAKE_ENV_DUMP=str(dump),
                PIPWORKS_FILES_AT="{services.files.address}",
            ),
        ),
    )
    banner = runner.wait_for_banner()
    assert re.search(rf"files\s+127\.0\.0\.1:{http_port}\n", banner)
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/", timeout=5) as reply:
        assert reply.status == 200
    env = json.loads(dump.read_text())["env"]
    assert env["PIPWORKS_FILES_AT"] == f"127.0.0.1:{http_port}"
    assert runner.stop(signal.SIGINT) == 0
    _assert_all_closed(http_port, alpha_port)

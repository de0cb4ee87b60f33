"""Fixtures for the platform tests: the test-only notes proto, an in-memory span
exporter installed as the global tracer provider, and migrated sample databases."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS

from pipworks_devstack.testing import free_port
from pipworks_platform.db import UnitOfWorkFactory, create_engine, session_factory
from tests.helpers import health_status, wait_serving
from tests.protos import compile_protos, ensure_importable
from tests.tokens import TokenAuthority

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE_PROTOS = Path(__file__).parent / "sample" / "protos"
NOTES_PROTO = Path("pipworks/testing/v1/notes.proto")


def _compile_notes_protos() -> None:
    """Compile notes.proto before test modules import it (and for subprocesses)."""
    out = Path(tempfile.mkdtemp(prefix="pipworks-test-protos-"))
    atexit.register(shutil.rmtree, out, True)
    compile_protos(SAMPLE_PROTOS, NOTES_PROTO, out)
    os.environ["PIPWORKS_TEST_PROTOS"] = str(out)
    ensure_importable(out)


_compile_notes_protos()


@pytest.fixture
async def sample_db(database_url: str) -> str:
    """A fresh database migrated to the sample service's head revision."""
    from pipworks_platform.db.migrations import upgrade_to_head
    from tests.platform.sample.service import MIGRATIONS, SERVICE

    await upgrade_to_head(database_url, MIGRATIONS, service=SERVICE)
    return database_url


@pytest.fixture
async def uow_factory(sample_db: str) -> AsyncIterator[UnitOfWorkFactory]:
    """Units of work on the sample service's database."""
    engine = create_engine(sample_db, application_name="test")
    yield UnitOfWorkFactory(session_factory(engine), service="identity")
    await engine.dispose()


@pytest.fixture
async def nats_client(nats_url: str) -> AsyncIterator[NATS]:
    nc = await nats.connect(nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    yield nc
    await nc.close()


class SampleProcess:
    """The sample service running as its own process, as in production."""

    def __init__(self, env: dict[str, str], log_path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = int(env["PIPWORKS_GRPC_ADDRESS"].rsplit(":", 1)[1])

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.platform.sample.service"],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def health(self, service: str = "") -> str:
        return health_status(self.port, service)

    def wait_serving(self, timeout: float = 30) -> None:
        assert self.proc is not None
        wait_serving(self.proc, self.port, timeout=timeout, describe=self.logs)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def sample_process(
    sample_db: str, nats_url: str, tmp_path, token_authority: TokenAuthority
) -> Iterator[Callable[..., SampleProcess]]:
    started: list[SampleProcess] = []

    def start(**extra_env: str) -> SampleProcess:
        env = {
            **os.environ,
            "PIPWORKS_DATABASE_URL": sample_db,
            "PIPWORKS_NATS_URL": nats_url,
            "PIPWORKS_GRPC_ADDRESS": f"127.0.0.1:{free_port()}",
            "PIPWORKS_METRICS_PORT": "0",
            "PIPWORKS_LOG_LEVEL": "INFO",
            "PIPWORKS_TEST_JWKS": token_authority.jwks_json(),
            **extra_env,
        }
        process = SampleProcess(env, tmp_path / f"sample-{len(started)}.log")
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()

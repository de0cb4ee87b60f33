"""A real PostgreSQL server for development and tests, from the pgserver wheel's binaries.

We drive ``initdb`` and ``postgres`` directly instead of ``pgserver.get_server()``:
pgserver listens on a unix socket only, shares one server per data directory across
processes and stops it from an ``atexit`` hook, while we need a TCP port on 127.0.0.1,
explicit start/stop/kill for fault-injection tests, and several independent servers
(one per pytest worker). Authentication follows production habits: over TCP every
role needs a SCRAM password; the passwordless ``postgres`` superuser can only come in
through the unix socket, which lives in the owner-only data directory.
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from pipworks_devstack._accounts import Account, hand_over, make_reachable, server_account
from pipworks_devstack._process import (
    LOOPBACK,
    ManagedServer,
    accepts_connections,
    file_size,
    free_port,
    kill_tree,
    log_tail,
    stop_leftover,
    stop_process,
)

SUPERUSER = "postgres"


def _pgserver_bin_dir() -> Path:
    """pgserver's bundled binaries, located without importing pgserver.

    Importing it has side effects we do not want (runtime-dir lookups, lock files).
    """
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("pgserver is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


POSTGRES_BIN_PATH = _pgserver_bin_dir()

# Defaults stay durable (fsync on): the runner's data outlives reboots, and with
# PostgreSQL 16's WAL-logged CREATE DATABASE a fresh test database takes ~50 ms anyway.
# max_connections leaves room for several services' pools plus two pytest workers' tests.
DEFAULT_SETTINGS: Mapping[str, str] = {
    "max_connections": "300",
    "timezone": "UTC",
    "log_timezone": "UTC",
}

# Role and database names go into SQL unquoted-safe: lower-case identifiers only.
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# Printable ASCII without spaces: no SASLprep surprises between server and clients.
_PASSWORD = re.compile(r"[\x21-\x7e]{8,128}")
# sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107


class PostgresError(RuntimeError):
    """PostgreSQL could not be initialised, started or administered."""


class EmbeddedPostgres(ManagedServer):
    """One PostgreSQL server on ``127.0.0.1:port`` with its data in ``data_dir``.

    The data directory is initialised on first start and reused afterwards. ``port=0``
    picks a free port on first start and keeps it for every restart, so URLs handed out
    stay valid. The server log goes to ``log_path`` (default: ``postgres.log`` next to
    the data directory).
    """

    def __init__(
        self,
        data_dir: Path | str,
        port: int = 0,
        *,
        log_path: Path | str | None = None,
        settings: Mapping[str, str] | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 30.0,
    ) -> None:
        self._data_dir = Path(data_dir).absolute()
        self._requested_port = port
        self._port = port
        self._log_path = (
            Path(log_path).absolute() if log_path else self._data_dir.parent / "postgres.log"
        )
        self._settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._account: Account | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._socket_dir: Path | None = None
        self._private_socket_dir = False
        self._passwords: dict[str, str] = {}
        self._admin_lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Start the server (initialising the data directory if empty) and wait until ready."""
        if self.is_running:
            return
        self._account = server_account()
        self._prepare_data_dir()
        if not (self._data_dir / "PG_VERSION").exists():
            self._initdb()
        self._stop_leftover_postmaster()
        attempts = 3 if self._requested_port == 0 else 1
        for attempt in range(1, attempts + 1):
            port = self._port or free_port()
            try:
                self._launch(port)
            except _PortTaken:
                if attempt == attempts:
                    raise PostgresError(f"port {port} is already in use") from None
                continue
            self._port = port
            return

    def stop(self) -> None:
        """Fast shutdown (SIGINT): roll back open transactions, checkpoint, exit; wait."""
        if self._proc is not None:
            proc, self._proc = self._proc, None
            if proc.poll() is None:
                # SIGINT is "fast shutdown"; SIGQUIT ("immediate") if it hangs.
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(self._stop_timeout)
                except subprocess.TimeoutExpired:
                    stop_process(proc, signal.SIGQUIT, 5.0)
        self._release_socket_dir()

    def kill(self) -> None:
        """SIGKILL the postmaster and its backends, as a crash would; the next start recovers."""
        if self._proc is not None:
            proc, self._proc = self._proc, None
            kill_tree(proc)
        self._release_socket_dir()

    # -- addresses -----------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port; 0 until a server started with ``port=0`` has picked one."""
        return self._port

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def log_path(self) -> Path:
        return self._log_path

    @property
    def admin_dsn(self) -> str:
        """libpq URL for the ``postgres`` superuser, over the unix socket (no password)."""
        socket_dir = quote(str(self._require_socket_dir()), safe="/")
        return f"postgresql://{SUPERUSER}@/{SUPERUSER}?host={socket_dir}&port={self._port}"

    def url(self, database: str, role: str, password: str) -> str:
        """SQLAlchemy asyncpg URL for ``role`` on ``database`` over TCP."""
        secret = quote(password, safe="")
        return f"postgresql+asyncpg://{role}:{secret}@{self.host}:{self._port}/{database}"

    # -- administration ------------------------------------------------------------

    def ensure_database(
        self, name: str, owner: str | None = None, password: str | None = None
    ) -> str:
        """Create (if missing) a login role and a database it owns; return its asyncpg URL.

        Idempotent. The role is ``owner`` (default: ``name``). ``password`` is set on
        every call; without one a random password is generated once per role and
        reused for the life of this object. Other roles lose the default right to
        connect, so one service's role cannot open another service's database.
        """
        role = owner or name
        _check_identifier("database name", name)
        _check_identifier("role name", role)
        if password is None:
            password = self._passwords.get(role) or secrets.token_urlsafe(24)
        elif not _PASSWORD.fullmatch(password):
            raise ValueError("password must be 8-128 printable ASCII characters without spaces")
        literal = password.replace("'", "''")
        # Names passed _check_identifier and the password is a quoted literal; the script
        # goes to psql on stdin over the local socket and the server stores only its
        # SCRAM-SHA-256 verifier (password_encryption).
        self.psql(
            f"SELECT format('CREATE ROLE %I LOGIN', '{role}') "  # noqa: S608
            f"WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}')\\gexec\n"
            f"ALTER ROLE {role} WITH LOGIN PASSWORD '{literal}';\n"
            f"SELECT format('CREATE DATABASE %I OWNER %I', '{name}', '{role}') "
            f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{name}')\\gexec\n"
            f"ALTER DATABASE {name} OWNER TO {role};\n"
            f"REVOKE ALL ON DATABASE {name} FROM PUBLIC;\n"
        )
        self._passwords[role] = password
        return self.url(name, role, password)

    def drop_database(self, name: str, *, drop_owner: bool = True) -> None:
        """Drop ``name`` even with open connections (FORCE), and its owner role if unused.

        The owner role goes too when ``drop_owner`` is set and it owns no other
        database; dropping an absent database is not an error.
        """
        _check_identifier("database name", name)
        owner = self.psql(
            f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{name}';"  # noqa: S608
        ).strip()
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE);")
        if drop_owner and _IDENTIFIER.fullmatch(owner) and owner != SUPERUSER:
            self.psql(
                f"SELECT format('DROP ROLE %I', '{owner}') WHERE NOT EXISTS ("  # noqa: S608
                f"SELECT FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba "
                f"WHERE r.rolname = '{owner}')\\gexec\n"
            )
            self._passwords.pop(owner, None)

    def psql(self, script: str, database: str = SUPERUSER) -> str:
        """Run a SQL script as the superuser through psql; return unaligned tuples-only output.

        The script travels on stdin, so nothing in it shows up in the process list.
        """
        if not self.is_running:
            raise PostgresError("PostgreSQL is not running")
        command = [
            str(POSTGRES_BIN_PATH / "psql"),
            "--no-psqlrc",
            "--quiet",
            "--no-align",
            "--tuples-only",
            "--set=ON_ERROR_STOP=1",
            f"--host={self._require_socket_dir()}",
            f"--port={self._port}",
            f"--username={SUPERUSER}",
            f"--dbname={database}",
        ]
        with self._admin_lock:
            result = subprocess.run(
                command,
                input=script.encode(),
                capture_output=True,
                env=_client_env(),
                timeout=60,
                check=False,
            )
        if result.returncode != 0:
            error = result.stderr.decode(errors="replace").strip()
            raise PostgresError(f"psql failed ({result.returncode}): {error}")
        return result.stdout.decode()

    # -- internals -----------------------------------------------------------------

    def _prepare_data_dir(self) -> None:
        self._data_dir.mkdir(parents=True, exist_ok=True)
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        if self._account is not None:
            make_reachable(self._data_dir, self._account)
            make_reachable(POSTGRES_BIN_PATH / "postgres", self._account)
            hand_over(self._data_dir, self._account)
        # PostgreSQL refuses a data directory that others can read.
        self._data_dir.chmod(0o700)

    def _initdb(self) -> None:
        if any(self._data_dir.iterdir()):
            raise PostgresError(
                f"{self._data_dir} is not empty but holds no PostgreSQL cluster (no PG_VERSION); "
                "refusing to initialise over it"
            )
        result = self._run_as_server(
            [
                str(POSTGRES_BIN_PATH / "initdb"),
                f"--pgdata={self._data_dir}",
                f"--username={SUPERUSER}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-locale",
            ]
        )
        if result.returncode != 0:
            output = result.stdout.decode(errors="replace").strip()
            raise PostgresError(f"initdb failed for {self._data_dir}:\n{output}")

    def _run_as_server(self, command: list[str]) -> subprocess.CompletedProcess[bytes]:
        extra = self._account.popen_kwargs() if self._account else {}
        return subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=self._data_dir,
            env=_server_env(),
            timeout=120,
            check=False,
            **extra,
        )

    def _stop_leftover_postmaster(self) -> None:
        """Shut down a postmaster that a killed runner left on this data directory."""
        try:
            first_line = (self._data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
            pid = int(first_line)
        except (OSError, ValueError):
            return
        stop_leftover(pid, str(self._data_dir), signal.SIGINT, self._stop_timeout)

    def _launch(self, port: int) -> None:
        socket_dir = self._acquire_socket_dir(port)
        settings = {
            **self._settings,
            "port": str(port),
            "listen_addresses": LOOPBACK,
            "unix_socket_directories": str(socket_dir),
        }
        command = [str(POSTGRES_BIN_PATH / "postgres"), "-D", str(self._data_dir)]
        for key, value in settings.items():
            command += ["-c", f"{key}={value}"]
        log_offset = file_size(self._log_path)
        extra = self._account.popen_kwargs() if self._account else {}
        with self._log_path.open("ab") as log:
            # Own session: a Ctrl-C in the terminal reaches the runner, which stops us in order.
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self._data_dir,
                env=_server_env(),
                start_new_session=True,
                **extra,
            )
        self._proc = proc
        try:
            self._wait_ready(proc, port, log_offset)
        except BaseException:
            self._proc = None
            kill_tree(proc)
            self._release_socket_dir()
            raise

    def _wait_ready(self, proc: subprocess.Popen[bytes], port: int, log_offset: int) -> None:
        """Wait for postmaster.pid to say "ready" (after any crash recovery) and TCP to accept."""
        deadline = time.monotonic() + self._start_timeout
        pid_file = self._data_dir / "postmaster.pid"
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = log_tail(self._log_path, since=log_offset)
                if "Address already in use" in tail:
                    raise _PortTaken
                raise PostgresError(
                    f"PostgreSQL exited with code {proc.returncode} while starting; "
                    f"log {self._log_path}:\n{tail}"
                )
            try:
                lines = pid_file.read_text().splitlines()
            except OSError:
                lines = []
            ready = len(lines) >= 8 and lines[0] == str(proc.pid) and lines[7].strip() == "ready"
            if ready and accepts_connections(port):
                return
            time.sleep(0.02)
        tail = log_tail(self._log_path, since=log_offset)
        raise PostgresError(
            f"PostgreSQL did not become ready within {self._start_timeout:.0f}s; "
            f"log {self._log_path}:\n{tail}"
        )

    def _acquire_socket_dir(self, port: int) -> Path:
        """The data directory if the socket path fits, else a private short temp directory."""
        if len(str(self._data_dir / f".s.PGSQL.{port}.lock")) <= _MAX_SOCKET_PATH:
            self._socket_dir, self._private_socket_dir = self._data_dir, False
            return self._data_dir
        socket_dir = Path(tempfile.mkdtemp(prefix="pipworks-pg-", dir="/tmp"))
        if self._account is not None:
            os.chown(socket_dir, self._account.uid, self._account.gid)
        self._socket_dir, self._private_socket_dir = socket_dir, True
        return socket_dir

    def _release_socket_dir(self) -> None:
        if self._socket_dir is not None and self._private_socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
        self._socket_dir, self._private_socket_dir = None, False

    def _require_socket_dir(self) -> Path:
        if self._socket_dir is None:
            raise PostgresError("PostgreSQL is not running")
        return self._socket_dir

    def __repr__(self) -> str:
        state = "running" if self.is_running else "stopped"
        return f"EmbeddedPostgres({str(self._data_dir)!r}, port={self._port}, {state})"


class _PortTaken(Exception):
    """The chosen port was grabbed by someone else between picking and binding it."""


def _check_identifier(what: str, value: str) -> None:
    if not _IDENTIFIER.fullmatch(value) or value == SUPERUSER or value.startswith("pg_"):
        raise ValueError(
            f"{what} {value!r} must be a lower-case identifier ([a-z_][a-z0-9_]*, at most "
            f"63 characters), not {SUPERUSER!r} and not starting with 'pg_'"
        )


def _server_env() -> dict[str, str]:
    """A minimal environment: the server must not inherit the caller's secrets or PG* vars."""
    return {"PATH": os.defpath, "LC_ALL": "C"}


def _client_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGCONNECT_TIMEOUT"] = "10"
    return env

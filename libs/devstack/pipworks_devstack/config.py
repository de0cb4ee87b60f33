"""The local suite definition (``deploy/local/suite.toml``): loading and validation.

Which services run locally is configuration, not code. Validation is strict (unknown
keys are errors, so a typo never silently falls back to a default) and reports every
problem at once, each prefixed with the dotted path of the offending key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_PATH = Path("deploy/local/suite.toml")

_SERVICE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ConfigError(Exception):
    """The suite file is missing, not TOML, or not a valid suite definition."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"invalid suite config {path}:\n{listing}")


@dataclass(frozen=True)
class PostgresConfig:
    port: int
    data_dir: Path


@dataclass(frozen=True)
class NatsConfig:
    port: int
    monitor_port: int
    store_dir: Path


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    module: str
    grpc_port: int
    metrics_port: int
    database: bool = False
    public: bool = False
    env: Mapping[str, str] = field(default_factory=dict)
    # Extra command-line arguments after `python -m <module>` ({placeholders} allowed).
    args: tuple[str, ...] = ()
    # "grpc": ready when grpc.health.v1 says SERVING; "tcp": when the port accepts
    # connections (for non-gRPC companions such as the MT5 simulator).
    readiness: str = "grpc"

    @property
    def is_grpc(self) -> bool:
        return self.readiness == "grpc"


@dataclass(frozen=True)
class RunnerConfig:
    secrets_file: Path
    startup_timeout: float = 60.0
    stop_timeout: float = 20.0
    shared_env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SuiteConfig:
    postgres: PostgresConfig
    nats: NatsConfig
    runner: RunnerConfig
    services: tuple[ServiceConfig, ...]


def load_config(path: Path, base_dir: Path) -> SuiteConfig:
    """Read and validate a suite file; relative paths in it resolve against ``base_dir``."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            path, ["file not found (run from the repository root or pass --config)"]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [f"cannot read: {exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, [f"not valid TOML: {exc}"]) from None
    return _Validator(path, base_dir).suite(raw)


class _Validator:
    """Turns the parsed TOML into a :class:`SuiteConfig`, collecting every problem."""

    def __init__(self, path: Path, base_dir: Path) -> None:
        self._path = path
        self._base_dir = base_dir
        self._problems: list[str] = []

    def suite(self, raw: dict[str, Any]) -> SuiteConfig:
        self._known_keys("", raw, {"postgres", "nats", "runner", "services"})
        pg = self._table("postgres", raw.get("postgres"), required=True)
        nats = self._table("nats", raw.get("nats"), required=True)
        runner = self._table("runner", raw.get("runner"), required=False)
        self._known_keys("postgres", pg, {"port", "data_dir"})
        self._known_keys("nats", nats, {"port", "monitor_port", "store_dir"})
        self._known_keys(
            "runner", runner, {"secrets_file", "startup_timeout", "stop_timeout", "shared_env"}
        )
        postgres = PostgresConfig(
            port=self._port("postgres.port", pg.get("port", 15432), allow_zero=True),
            data_dir=self._path_value("postgres.data_dir", pg.get("data_dir", ".data/postgres")),
        )
        nats_config = NatsConfig(
            port=self._port("nats.port", nats.get("port", 4222), allow_zero=True),
            monitor_port=self._port(
                "nats.monitor_port", nats.get("monitor_port", 8222), allow_zero=True
            ),
            store_dir=self._path_value("nats.store_dir", nats.get("store_dir", ".data/nats")),
        )
        runner_config = RunnerConfig(
            secrets_file=self._path_value(
                "runner.secrets_file", runner.get("secrets_file", ".data/dev-secrets.json")
            ),
            startup_timeout=self._seconds(
                "runner.startup_timeout", runner.get("startup_timeout", 60.0)
            ),
            stop_timeout=self._seconds("runner.stop_timeout", runner.get("stop_timeout", 20.0)),
            shared_env=self._env("runner.shared_env", runner.get("shared_env", {})),
        )
        services = self._services(raw.get("services", []))
        self._check_ports(postgres, nats_config, services)
        if self._problems:
            raise ConfigError(self._path, self._problems)
        return SuiteConfig(postgres, nats_config, runner_config, services)

    # -- services ------------------------------------------------------------------

    def _services(self, raw: object) -> tuple[ServiceConfig, ...]:
        if not isinstance(raw, list):
            self._problem("services", "must be an array of tables ([[services]])")
            return ()
        services: list[ServiceConfig] = []
        for index, entry in enumerate(raw):
            where = f"services[{index}]"
            table = self._table(where, entry, required=True)
            if not table:
                continue
            service = self._service(where, table)
            if service is not None:
                services.append(service)
        self._unique("name", [s.name for s in services])
        public = [s.name for s in services if s.public]
        if len(public) > 1:
            self._problem("services", f"only one service may be public, got {', '.join(public)}")
        return tuple(services)

    def _service(self, where: str, table: dict[str, Any]) -> ServiceConfig | None:
        allowed = {
            "name",
            "module",
            "grpc_port",
            "metrics_port",
            "database",
            "public",
            "env",
            "args",
            "readiness",
        }
        before = len(self._problems)
        name = self._string(f"{where}.name", table.get("name"), _SERVICE_NAME, "[a-z][a-z0-9_]*")
        if name:
            where = f"{where} ({name})"
        self._known_keys(where, table, allowed)
        module = self._string(f"{where}.module", table.get("module"), _MODULE, "a dotted module")
        grpc_port = self._port(f"{where}.grpc_port", table.get("grpc_port"))
        metrics_port = self._port(
            f"{where}.metrics_port", table.get("metrics_port", 0), allow_zero=True
        )
        args = self._args(f"{where}.args", table.get("args", []))
        readiness = table.get("readiness", "grpc")
        if readiness not in ("grpc", "tcp"):
            self._problem(f"{where}.readiness", 'must be "grpc" or "tcp"')
        database = self._bool(f"{where}.database", table.get("database", False))
        public = self._bool(f"{where}.public", table.get("public", False))
        env = self._env(f"{where}.env", table.get("env", {}))
        if database and (name == "postgres" or name.startswith("pg_")):
            self._problem(f"{where}.name", "is reserved by PostgreSQL; pick another name")
        if len(self._problems) > before:
            return None
        return ServiceConfig(
            name, module, grpc_port, metrics_port, database, public, env, args, readiness
        )

    def _args(self, key: str, raw: object) -> tuple[str, ...]:
        if not isinstance(raw, list) or not all(isinstance(a, str) for a in raw):
            self._problem(key, "must be an array of strings")
            return ()
        return tuple(raw)

    def _env(self, key: str, raw: object) -> dict[str, str]:
        if not isinstance(raw, dict):
            self._problem(key, 'must be a table of NAME = "value"')
            return {}
        env: dict[str, str] = {}
        for name, value in raw.items():
            if not _ENV_NAME.fullmatch(name):
                self._problem(f"{key}.{name}", "is not a valid environment variable name")
            elif not isinstance(value, str):
                self._problem(f"{key}.{name}", f"must be a string, got {_describe(value)}")
            else:
                env[name] = value
        return env

    def _check_ports(
        self, postgres: PostgresConfig, nats: NatsConfig, services: tuple[ServiceConfig, ...]
    ) -> None:
        owners: dict[int, list[str]] = {}
        claims = [
            ("postgres.port", postgres.port),
            ("nats.port", nats.port),
            ("nats.monitor_port", nats.monitor_port),
        ]
        for service in services:
            claims.append((f"services ({service.name}).grpc_port", service.grpc_port))
            claims.append((f"services ({service.name}).metrics_port", service.metrics_port))
        for key, port in claims:
            if port:
                owners.setdefault(port, []).append(key)
        for port, keys in owners.items():
            if len(keys) > 1:
                self._problem(keys[-1], f"port {port} is also used by {', '.join(keys[:-1])}")

    # -- scalar checks -------------------------------------------------------------

    def _table(self, key: str, raw: object, *, required: bool) -> dict[str, Any]:
        if raw is None:
            if required:
                self._problem(key, "is required")
            return {}
        if not isinstance(raw, dict):
            self._problem(key, f"must be a table, got {_describe(raw)}")
            return {}
        return raw

    def _known_keys(self, where: str, table: dict[str, Any], allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                expected = ", ".join(sorted(allowed))
                self._problem(
                    f"{where}.{key}" if where else key, f"unknown key (expected {expected})"
                )

    def _port(self, key: str, raw: object, *, allow_zero: bool = False) -> int:
        low = 0 if allow_zero else 1
        if raw is None:
            self._problem(key, "is required")
            return 0
        if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= 65535:
            hint = " (0 picks a free port)" if allow_zero else ""
            self._problem(
                key, f"must be an integer from {low} to 65535{hint}, got {_describe(raw)}"
            )
            return 0
        return raw

    def _string(self, key: str, raw: object, pattern: re.Pattern[str], shape: str) -> str:
        if raw is None:
            self._problem(key, "is required")
            return ""
        if not isinstance(raw, str) or not pattern.fullmatch(raw):
            self._problem(key, f"must be {shape}, got {_describe(raw)}")
            return ""
        return raw

    def _bool(self, key: str, raw: object) -> bool:
        if not isinstance(raw, bool):
            self._problem(key, f"must be true or false, got {_describe(raw)}")
            return False
        return raw

    def _seconds(self, key: str, raw: object) -> float:
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw <= 3600:
            self._problem(key, f"must be a number of seconds from 0 to 3600, got {_describe(raw)}")
            return 1.0
        return float(raw)

    def _path_value(self, key: str, raw: object) -> Path:
        if not isinstance(raw, str) or not raw:
            self._problem(key, f"must be a path string, got {_describe(raw)}")
            return self._base_dir
        return self._base_dir / Path(raw).expanduser()

    def _unique(self, what: str, values: list[str]) -> None:
        seen: set[str] = set()
        for value in values:
            if value in seen:
                self._problem("services", f"{what} {value!r} is used by more than one service")
            seen.add(value)

    def _problem(self, key: str, message: str) -> None:
        self._problems.append(f"{key}: {message}")


def _describe(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"{value!r} ({type(value).__name__})"

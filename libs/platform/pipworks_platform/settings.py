"""Service settings, read once from environment variables and validated at start-up.

Every variable is ``PIPWORKS_<FIELD>``; OpenTelemetry keeps its standard ``OTEL_*``
variables, which the SDK reads itself. A service that needs more settings subclasses
:class:`ServiceSettings` and adds fields; validation failures name the variable, never
its value, because values may be secrets.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "PIPWORKS_"


class SettingsError(Exception):
    """One or more environment variables are missing or malformed."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration:\n{lines}")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class ServiceSettings(BaseSettings):
    """Settings every Pipworks service process understands."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        case_sensitive=False,
        extra="ignore",
        frozen=True,
    )

    environment: Environment = Environment.PRODUCTION
    grpc_address: str = "0.0.0.0:50051"
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    log_level: str = "INFO"
    database_url: SecretStr | None = None
    database_pool_size: int = Field(default=10, ge=1, le=200)
    # true: apply pending migrations at start-up (under an advisory lock). false: a separate
    # job owns them (`pipworks migrate <service>`, the Helm hook) and the service waits up
    # to migration_wait_seconds for the database to reach head before it starts serving.
    migrate_on_start: bool = True
    migration_wait_seconds: float = Field(default=300.0, ge=0, le=3600)
    nats_url: str = "nats://127.0.0.1:4222"
    stream_replicas: int = Field(default=1, ge=1, le=5)
    encryption_keys: SecretStr | None = None
    encryption_active_key: str | None = None
    shutdown_drain_seconds: float = Field(default=0.0, ge=0, le=120)
    shutdown_grace_seconds: float = Field(default=10.0, ge=0, le=600)
    max_message_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    auth_issuer: str = Field(default="pipworks-identity", min_length=1)
    auth_audience: str = Field(default="pipworks", min_length=1)
    identity_address: str | None = None

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator("grpc_address", "identity_address")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("must be HOST:PORT, for example 0.0.0.0:50051")
        return value

    @field_validator("database_url")
    @classmethod
    def _async_postgres(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("postgresql+asyncpg://", "postgresql://", "postgres://")
        ):
            raise ValueError("must be a postgresql:// or postgresql+asyncpg:// URL")
        return value

    @field_validator("nats_url")
    @classmethod
    def _nats_scheme(cls, value: str) -> str:
        for server in value.split(","):
            if not server.strip().startswith(("nats://", "tls://", "ws://", "wss://")):
                raise ValueError("must be nats://HOST:PORT (comma-separated for a cluster)")
        return value

    @property
    def nats_servers(self) -> list[str]:
        return [s.strip() for s in self.nats_url.split(",") if s.strip()]

    def require_database_url(self) -> str:
        if self.database_url is None:
            raise SettingsError([f"{ENV_PREFIX}DATABASE_URL: required by this service"])
        return self.database_url.get_secret_value()

    @classmethod
    def from_env(cls) -> Self:
        """Load and validate; raise :class:`SettingsError` naming every bad variable."""
        try:
            return cls()
        except ValidationError as exc:
            raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> list[str]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        field = ".".join(str(part) for part in error["loc"]) or "?"
        variable = f"{ENV_PREFIX}{field.upper()}"
        message = "is required" if error["type"] == "missing" else error["msg"]
        message = message.removeprefix("Value error, ")
        problems.append(f"{variable}: {message}")
    return problems

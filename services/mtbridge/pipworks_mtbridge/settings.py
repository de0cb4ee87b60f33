"""The bridge's settings: ``PIPWORKS_MTBRIDGE_*`` on top of what every service reads.

Trading servers are one variable, ``PIPWORKS_MTBRIDGE_SERVERS``, a comma-separated list
of ``name=url|manager_login|group_prefix`` (for example
``mt5-live=https://mt5.example.com:443|1000|real\\,mt5-demo=https://...|1001|demo\\``).
Each server's manager password is a secret of its own,
``PIPWORKS_MTBRIDGE_PASSWORD_<NAME>`` (the name upper-cased, ``-`` as ``_``), so it can
come from a Kubernetes Secret while the rest is plain configuration.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import NoDecode

from pipworks_mtbridge.domain.margin import MarginPolicy
from pipworks_platform.settings import ENV_PREFIX, ServiceSettings

SERVERS_VARIABLE = f"{ENV_PREFIX}MTBRIDGE_SERVERS"
PASSWORD_VARIABLE_PREFIX = f"{ENV_PREFIX}MTBRIDGE_PASSWORD_"
_SERVER_NAME = re.compile(r"[a-z][a-z0-9-]{0,30}[a-z0-9]")


@dataclass(frozen=True)
class ServerConfig:
    """One trading server the bridge manages."""

    name: str
    url: str
    manager_login: int
    group_prefix: str
    password: SecretStr

    def __repr__(self) -> str:  # the password stays out of logs and tracebacks
        return f"ServerConfig(name={self.name!r}, url={self.url!r}, login={self.manager_login})"


def password_variable(server: str) -> str:
    return PASSWORD_VARIABLE_PREFIX + server.upper().replace("-", "_")


class MtBridgeSettings(ServiceSettings):
    # Manager passwords by server name; read from PIPWORKS_MTBRIDGE_PASSWORD_<NAME>.
    mtbridge_passwords: dict[str, SecretStr] = Field(default_factory=dict)
    mtbridge_servers: Annotated[tuple[ServerConfig, ...], NoDecode] = ()

    # The live account opened when KYC approves a client.
    mtbridge_kyc_server: str | None = None
    mtbridge_kyc_group: str | None = None
    mtbridge_kyc_leverage: int = Field(default=100, ge=1, le=10_000)

    # Deal sync.
    mtbridge_sync_interval_seconds: float = Field(default=1.0, gt=0, le=300)
    mtbridge_sync_overlap_seconds: float = Field(default=2.0, ge=0, le=3600)
    mtbridge_sync_batch_size: int = Field(default=500, ge=1, le=2000)

    # Margin monitoring.
    mtbridge_margin_interval_seconds: float = Field(default=10.0, gt=0, le=3600)
    mtbridge_margin_call_levels: Annotated[tuple[Decimal, ...], NoDecode] = (
        Decimal(100),
        Decimal(50),
    )
    mtbridge_margin_rearm_points: Decimal = Field(default=Decimal(10), ge=0, le=1000)

    # Platform calls.
    mtbridge_platform_timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    @model_validator(mode="before")
    @classmethod
    def _passwords_from_environment(cls, data: Any) -> Any:
        if isinstance(data, dict) and "mtbridge_passwords" not in data:
            found = {
                key[len(PASSWORD_VARIABLE_PREFIX) :].lower().replace("_", "-"): value
                for key, value in os.environ.items()
                if key.upper().startswith(PASSWORD_VARIABLE_PREFIX)
            }
            data = {**data, "mtbridge_passwords": found}
        return data

    @field_validator("mtbridge_servers", mode="before")
    @classmethod
    def _servers(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        passwords: dict[str, SecretStr] = info.data.get("mtbridge_passwords", {})
        servers: list[ServerConfig] = []
        for entry in (part.strip() for part in value.split(",")):
            if entry:
                servers.append(_parse_server(entry, passwords))
        names = [s.name for s in servers]
        if len(set(names)) != len(names):
            raise ValueError("server names must be unique")
        return tuple(servers)

    @field_validator("mtbridge_margin_call_levels", mode="before")
    @classmethod
    def _levels(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                value = tuple(Decimal(part) for part in value.split(",") if part.strip())
            except InvalidOperation:
                raise ValueError("must be percentages separated by commas, e.g. 100,50") from None
        if isinstance(value, tuple | list) and (not value or any(v <= 0 for v in value)):
            raise ValueError("must list at least one positive percentage")
        return value

    @field_validator("mtbridge_kyc_server")
    @classmethod
    def _kyc_server(cls, value: str | None, info: ValidationInfo) -> str | None:
        servers = info.data.get("mtbridge_servers")
        if value is not None and servers is not None and value not in {s.name for s in servers}:
            raise ValueError(f"must be one of the servers in {SERVERS_VARIABLE}")
        return value

    @field_validator("mtbridge_kyc_group")
    @classmethod
    def _kyc_group(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "mtbridge_kyc_server" not in info.data:
            return value  # the server is already reported
        server_name = info.data["mtbridge_kyc_server"]
        if (value is None) != (server_name is None):
            raise ValueError(f"set together with {ENV_PREFIX}MTBRIDGE_KYC_SERVER")
        servers = {s.name: s for s in info.data.get("mtbridge_servers") or ()}
        server = servers.get(server_name or "")
        if (
            value is not None
            and server is not None
            and not value.lower().startswith(server.group_prefix.lower())
        ):
            raise ValueError(f"must be under the group prefix of server {server.name}")
        return value

    @property
    def margin_policy(self) -> MarginPolicy:
        return MarginPolicy(
            thresholds=self.mtbridge_margin_call_levels,
            rearm_margin=self.mtbridge_margin_rearm_points,
        )


def _parse_server(entry: str, passwords: dict[str, SecretStr]) -> ServerConfig:
    name, sep, rest = entry.partition("=")
    name = name.strip()
    parts = rest.split("|")
    if not sep or len(parts) != 3:
        raise ValueError("each server is name=url|manager_login|group_prefix")
    url, login, prefix = (p.strip() for p in parts)
    if not _SERVER_NAME.fullmatch(name):
        raise ValueError(
            f"server name {name!r} must be lower-case letters, digits and '-' (e.g. mt5-live)"
        )
    scheme = urlsplit(url)
    if scheme.scheme not in ("http", "https") or not scheme.hostname:
        raise ValueError(f"server {name}: the url must be http(s)://host[:port]")
    if not login.isdigit() or int(login) <= 0:
        raise ValueError(f"server {name}: the manager login must be a positive number")
    if not prefix:
        raise ValueError(f"server {name}: the group prefix is required (e.g. real\\)")
    password = passwords.get(name)
    if password is None or not password.get_secret_value():
        raise ValueError(
            f"server {name}: its manager password {password_variable(name)} is not set"
        )
    return ServerConfig(name, url.rstrip("/"), int(login), prefix, password)

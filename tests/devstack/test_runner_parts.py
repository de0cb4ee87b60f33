"""The runner's building blocks: dev secrets, service environment, banner, preflight."""

from __future__ import annotations

import base64
import json
import socket
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipworks_devstack.banner import READY_LINE, BannerService, render_banner
from pipworks_devstack.config import ServiceConfig
from pipworks_devstack.devsecrets import SecretsError, load_or_create
from pipworks_devstack.environment import placeholders, service_env
from pipworks_devstack.runner import busy_ports, installed
from pipworks_devstack.testing import free_port


def _service(**overrides: object) -> ServiceConfig:
    fields: dict[str, object] = {
        "name": "alpha",
        "module": "json",
        "grpc_port": 50100,
        "metrics_port": 9500,
        "database": True,
    }
    fields.update(overrides)
    return ServiceConfig(**fields)  # type: ignore[arg-type]


def test_secrets_are_created_once_private_and_then_only_extended(tmp_path: Path) -> None:
    path = tmp_path / ".data" / "dev-secrets.json"
    first = load_or_create(path, ["identity"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert first.active_key_id == "dev1"
    assert len(base64.b64decode(first.encryption_keys["dev1"])) == 32
    assert first.encryption_keys_env == f"dev1:{first.encryption_keys['dev1']}"

    second = load_or_create(path, ["identity", "kyc"])
    assert second.encryption_keys == first.encryption_keys
    assert second.database_passwords["identity"] == first.database_passwords["identity"]
    assert second.database_passwords["kyc"] not in (None, first.database_passwords["identity"])
    assert set(json.loads(path.read_text())["database_passwords"]) == {"identity", "kyc"}


def test_widened_secrets_file_is_restricted_again(tmp_path: Path) -> None:
    path = tmp_path / "dev-secrets.json"
    load_or_create(path, [])
    path.chmod(0o644)
    load_or_create(path, [])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_damaged_secrets_file_is_an_error_not_a_reset(tmp_path: Path) -> None:
    path = tmp_path / "dev-secrets.json"
    path.write_text('{"database_passwords": {}}')
    path.chmod(0o600)
    with pytest.raises(SecretsError, match="damaged"):
        load_or_create(path, ["identity"])
    assert path.read_text() == '{"database_passwords": {}}'


def test_service_env_carries_the_platform_settings(tmp_path: Path) -> None:
    secrets = load_or_create(tmp_path / "s.json", ["alpha"])
    env = service_env(
        _service(env={"EXTRA": "x", "PIPWORKS_LOG_LEVEL": "DEBUG"}),
        base={"PATH": "/bin", "PIPWORKS_LOG_LEVEL": "WARNING", "PIPWORKS_DATABASE_URL": "stale"},
        nats_url="nats://127.0.0.1:4222",
        database_url="postgresql+asyncpg://alpha:pw@127.0.0.1:5432/alpha",
        secrets=secrets,
    )
    assert env["PATH"] == "/bin"
    assert env["PIPWORKS_GRPC_ADDRESS"] == "127.0.0.1:50100"
    assert env["PIPWORKS_METRICS_PORT"] == "9500"
    assert env["PIPWORKS_DATABASE_URL"] == "postgresql+asyncpg://alpha:pw@127.0.0.1:5432/alpha"
    assert env["PIPWORKS_NATS_URL"] == "nats://127.0.0.1:4222"
    assert env["PIPWORKS_ENCRYPTION_KEYS"] == secrets.encryption_keys_env
    assert env["PIPWORKS_ENCRYPTION_ACTIVE_KEY"] == "dev1"
    assert env["PIPWORKS_ENVIRONMENT"] == "development"
    assert env["OTEL_SERVICE_NAME"] == "pipworks-alpha"
    assert env["PIPWORKS_LOG_LEVEL"] == "DEBUG"  # the service's env table wins
    assert env["EXTRA"] == "x"

    without_db = service_env(
        _service(database=False),
        base={"PIPWORKS_DATABASE_URL": "stale"},
        nats_url="nats://127.0.0.1:4222",
        database_url=None,
        secrets=secrets,
    )
    assert "PIPWORKS_DATABASE_URL" not in without_db
    assert without_db["PIPWORKS_LOG_LEVEL"] == "INFO"


def _banner(services: list[BannerService]) -> str:
    return render_banner(
        postgres_address="127.0.0.1:54329",
        postgres_admin_dsn="postgresql://postgres@/postgres?host=/x&port=54329",
        psql="psql",
        nats_url="nats://127.0.0.1:4222",
        nats_monitor_url="http://127.0.0.1:8222",
        services=services,
        skipped=["ghost"],
    )


def test_banner_names_the_gateway_or_says_there_is_none() -> None:
    alpha = BannerService("alpha", "127.0.0.1:50100", 9500, "alpha", public=False)
    gateway = BannerService("gateway", "127.0.0.1:50060", 9460, None, public=True)

    without = _banner([alpha])
    assert READY_LINE in without
    assert "none (no service has public = true)" in without
    assert "grpcurl -plaintext 127.0.0.1:50100 list" in without
    assert "make demo" not in without
    assert "Skipped (module not installed): ghost" in without

    with_gateway = _banner([alpha, gateway])
    assert "Gateway     127.0.0.1:50060" in with_gateway
    assert "grpcurl -plaintext 127.0.0.1:50060 list" in with_gateway
    assert "`make demo`" in with_gateway


def test_uninstalled_modules_are_skipped() -> None:
    runnable, skipped = installed(
        [
            _service(name="present", module="json"),
            _service(name="absent", module="pipworks_not_here"),
            _service(name="nested", module="pipworks_not_here.sub"),
        ]
    )
    assert [s.name for s in runnable] == ["present"]
    assert skipped == ["absent", "nested"]


def test_busy_ports_are_reported_by_service() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        problems = busy_ports([_service(grpc_port=taken, metrics_port=free_port())])
    assert problems == [f"alpha: gRPC port {taken} is already in use"]


def test_identity_signing_key_and_admin_password_are_generated_once(tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    first = load_or_create(path, ["identity"])
    kid, seed = first.signing_keys_env.split(":", 1)
    assert kid == first.active_signing_key_id
    Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed))  # a real Ed25519 seed
    assert len(first.admin_password) >= 16
    again = load_or_create(path, ["identity", "kyc"])
    assert again.signing_keys == first.signing_keys
    assert again.admin_password == first.admin_password


def test_env_placeholders_name_services_routes_and_secrets(tmp_path: Path) -> None:
    secrets = load_or_create(tmp_path / "secrets.json", ["identity"])
    identity = ServiceConfig(
        "identity",
        "pipworks_identity",
        7061,
        9461,
        database=True,
        env={"PIPWORKS_IDENTITY_SIGNING_KEYS": "{secrets.signing_keys}"},
    )
    ib = ServiceConfig("ib", "pipworks_ib", 7063, 9463, database=True)
    gateway = ServiceConfig(
        "gateway",
        "pipworks_gateway",
        7060,
        9460,
        public=True,
        env={"PIPWORKS_GATEWAY_ROUTES": "{routes}", "X_KYC": "{services.kyc.address}"},
    )
    running = [identity, ib, gateway]
    values = placeholders(running, secrets)
    shared = {"PIPWORKS_IDENTITY_ADDRESS": "{services.identity.address}"}

    gateway_env = service_env(
        gateway,
        base={},
        nats_url="nats://x",
        database_url=None,
        secrets=secrets,
        shared_env=shared,
        values=values,
    )
    assert gateway_env["PIPWORKS_GATEWAY_ROUTES"] == (
        "pipworks.identity.v1=127.0.0.1:7061,pipworks.ib.v1=127.0.0.1:7063"
    )
    assert gateway_env["PIPWORKS_IDENTITY_ADDRESS"] == "127.0.0.1:7061"
    assert "X_KYC" not in gateway_env  # kyc is not running: left unset, not garbled
    identity_env = service_env(
        identity,
        base={},
        nats_url="nats://x",
        database_url="postgresql://i",
        secrets=secrets,
        shared_env=shared,
        values=values,
    )
    assert identity_env["PIPWORKS_IDENTITY_SIGNING_KEYS"] == secrets.signing_keys_env
    ib_env = service_env(
        ib, base={}, nats_url="nats://x", database_url="postgresql://b", secrets=secrets
    )
    assert "PIPWORKS_IDENTITY_SIGNING_KEYS" not in ib_env  # only identity holds the key

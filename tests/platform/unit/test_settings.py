"""Settings: every bad variable is named, values (possibly secrets) never echoed."""

from __future__ import annotations

import pytest

from pipworks_platform.settings import ServiceSettings, SettingsError


def test_defaults_need_no_environment(monkeypatch):
    for name in ("PIPWORKS_GRPC_ADDRESS", "PIPWORKS_DATABASE_URL", "PIPWORKS_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    settings = ServiceSettings.from_env()
    assert settings.grpc_address == "0.0.0.0:50051"
    assert settings.database_url is None
    assert settings.nats_servers == ["nats://127.0.0.1:4222"]


def test_values_are_parsed_and_normalised(monkeypatch):
    monkeypatch.setenv("PIPWORKS_LOG_LEVEL", "debug")
    monkeypatch.setenv("PIPWORKS_NATS_URL", "nats://a:4222, nats://b:4222")
    monkeypatch.setenv("PIPWORKS_STREAM_REPLICAS", "3")
    settings = ServiceSettings.from_env()
    assert settings.log_level == "DEBUG"
    assert settings.nats_servers == ["nats://a:4222", "nats://b:4222"]
    assert settings.stream_replicas == 3


def test_every_malformed_variable_is_named_at_once(monkeypatch):
    monkeypatch.setenv("PIPWORKS_METRICS_PORT", "ninety")
    monkeypatch.setenv("PIPWORKS_STREAM_REPLICAS", "9")
    monkeypatch.setenv("PIPWORKS_LOG_LEVEL", "chatty")
    monkeypatch.setenv("PIPWORKS_DATABASE_URL", "mysql://root:topsecret@db/x")
    with pytest.raises(SettingsError) as raised:
        ServiceSettings.from_env()
    message = str(raised.value)
    for variable in (
        "PIPWORKS_METRICS_PORT",
        "PIPWORKS_STREAM_REPLICAS",
        "PIPWORKS_LOG_LEVEL",
        "PIPWORKS_DATABASE_URL",
    ):
        assert variable in message
    assert "topsecret" not in message
    assert len(raised.value.problems) == 4


def test_a_required_database_url_is_named_when_missing(monkeypatch):
    monkeypatch.delenv("PIPWORKS_DATABASE_URL", raising=False)
    with pytest.raises(SettingsError, match="PIPWORKS_DATABASE_URL"):
        ServiceSettings.from_env().require_database_url()


def test_secrets_do_not_show_in_repr(monkeypatch):
    monkeypatch.setenv("PIPWORKS_DATABASE_URL", "postgresql://u:topsecret@db/x")
    monkeypatch.setenv("PIPWORKS_ENCRYPTION_KEYS", "k1:c2VjcmV0")
    settings = ServiceSettings.from_env()
    assert "topsecret" not in repr(settings)
    assert "c2VjcmV0" not in repr(settings)

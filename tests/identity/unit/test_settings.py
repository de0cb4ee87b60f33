"""Identity settings: required signing keys, validated values, errors that name the variable."""

from __future__ import annotations

import base64
import os

import pytest

from pipworks_identity.settings import IdentitySettings
from pipworks_platform.settings import SettingsError

SEED = base64.b64encode(os.urandom(32)).decode()
BASE = {
    "PIPWORKS_IDENTITY_SIGNING_KEYS": f"k1:{SEED}",
    "PIPWORKS_IDENTITY_ACTIVE_SIGNING_KEY": "k1",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch):
    for key in list(os.environ):
        if key.startswith("PIPWORKS_"):
            monkeypatch.delenv(key)

    def set_env(**values: str) -> None:
        for key, value in {**BASE, **values}.items():
            monkeypatch.setenv(key, value)

    return set_env


def test_sound_defaults(env) -> None:
    env()
    settings = IdentitySettings.from_env()
    assert (settings.argon2.time_cost, settings.argon2.memory_kib, settings.argon2.parallelism) == (
        3,
        65536,
        1,
    )
    assert settings.lifetimes.access_token.total_seconds() == 600
    assert settings.identity_lockout_durations_seconds == (60, 300, 900, 3600, 14400)
    assert settings.signing_keys.active_id == "k1"


def test_lists_parse_from_commas(env) -> None:
    env(PIPWORKS_IDENTITY_LOCKOUT_DURATIONS_SECONDS="30, 90")
    assert IdentitySettings.from_env().identity_lockout_durations_seconds == (30, 90)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PIPWORKS_IDENTITY_SIGNING_KEYS", "k1:c2hvcnQ=", "32-byte seed"),
        ("PIPWORKS_IDENTITY_SIGNING_KEYS", "no-colon", "KEY_ID:BASE64_SEED"),
        ("PIPWORKS_IDENTITY_ACTIVE_SIGNING_KEY", "k2", "one of the key ids"),
        ("PIPWORKS_IDENTITY_ARGON2_TIME_COST", "0", "greater than or equal to 1"),
        ("PIPWORKS_IDENTITY_LOCKOUT_DURATIONS_SECONDS", "60,-1", "positive"),
        ("PIPWORKS_IDENTITY_LOCKOUT_DURATIONS_SECONDS", "1m", "seconds separated by commas"),
        ("PIPWORKS_IDENTITY_BOOTSTRAP_ADMIN_EMAIL", "not-an-email", "address"),
    ],
)
def test_bad_values_name_the_variable_not_the_value(env, variable, value, message) -> None:
    env(**{variable: value})
    with pytest.raises(SettingsError) as raised:
        IdentitySettings.from_env()
    text = str(raised.value)
    assert variable in text
    assert message in text
    if variable == "PIPWORKS_IDENTITY_SIGNING_KEYS" and ":" in value:
        assert value.partition(":")[2] not in text  # the key material is never echoed


def test_missing_signing_keys_are_required(env, monkeypatch) -> None:
    env()
    monkeypatch.delenv("PIPWORKS_IDENTITY_SIGNING_KEYS")
    with pytest.raises(SettingsError, match="PIPWORKS_IDENTITY_SIGNING_KEYS: is required"):
        IdentitySettings.from_env()


def test_bootstrap_admin_needs_both_and_a_strong_password(env) -> None:
    env(PIPWORKS_IDENTITY_BOOTSTRAP_ADMIN_EMAIL="root@broker.example")
    with pytest.raises(SettingsError, match="PIPWORKS_IDENTITY_BOOTSTRAP_ADMIN_PASSWORD: set"):
        IdentitySettings.from_env()
    env(
        PIPWORKS_IDENTITY_BOOTSTRAP_ADMIN_EMAIL="root@broker.example",
        PIPWORKS_IDENTITY_BOOTSTRAP_ADMIN_PASSWORD="password1234",
    )
    with pytest.raises(SettingsError, match="too common") as raised:
        IdentitySettings.from_env()
    assert "password1234" not in str(raised.value)

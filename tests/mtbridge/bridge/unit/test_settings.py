"""Server configuration: parsed and validated at start-up, secrets never echoed."""

from __future__ import annotations

import os

import pytest

from pipworks_mtbridge.settings import MtBridgeSettings, password_variable
from pipworks_platform.settings import SettingsError

LIVE = "mt5-live=https://mt5.example.com:443|1000|real\\"
DEMO = "mt5-demo=http://127.0.0.1:9000|1001|demo\\"
SECRET = "Manager-Secret-1"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch):
    for key in list(os.environ):
        if key.startswith("PIPWORKS_MTBRIDGE_"):
            monkeypatch.delenv(key)

    def set_env(**values: str) -> None:
        for key, value in values.items():
            monkeypatch.setenv(key, value)

    return set_env


def test_servers_and_their_passwords_come_from_the_environment(env) -> None:
    env(
        PIPWORKS_MTBRIDGE_SERVERS=f"{LIVE}, {DEMO}",
        PIPWORKS_MTBRIDGE_PASSWORD_MT5_LIVE=SECRET,
        PIPWORKS_MTBRIDGE_PASSWORD_MT5_DEMO="other",
        PIPWORKS_MTBRIDGE_KYC_SERVER="mt5-live",
        PIPWORKS_MTBRIDGE_KYC_GROUP="real\\standard",
        PIPWORKS_MTBRIDGE_MARGIN_CALL_LEVELS="100,50,30",
    )
    settings = MtBridgeSettings.from_env()
    live, demo = settings.mtbridge_servers
    assert (live.name, live.url, live.manager_login, live.group_prefix) == (
        "mt5-live",
        "https://mt5.example.com:443",
        1000,
        "real\\",
    )
    assert live.password.get_secret_value() == SECRET
    assert demo.name == "mt5-demo"
    assert [str(t) for t in settings.margin_policy.thresholds] == ["100", "50", "30"]
    assert SECRET not in repr(settings)
    assert SECRET not in repr(live)


def test_no_servers_is_a_valid_configuration(env) -> None:
    assert MtBridgeSettings.from_env().mtbridge_servers == ()


@pytest.mark.parametrize(
    ("servers", "message"),
    [
        ("mt5-live=https://x|1000", "name=url|manager_login|group_prefix"),
        ("MT5=https://x|1000|real\\", "server name"),
        ("mt5-live=ftp://x|1000|real\\", "http(s)"),
        ("mt5-live=https://x|abc|real\\", "manager login"),
        ("mt5-live=https://x|1000|", "group prefix"),
        (f"{LIVE},{LIVE}", "unique"),
        (DEMO, password_variable("mt5-demo")),
    ],
)
def test_bad_server_lists_name_the_variable_and_the_problem(
    env, servers: str, message: str
) -> None:
    env(PIPWORKS_MTBRIDGE_SERVERS=servers, PIPWORKS_MTBRIDGE_PASSWORD_MT5_LIVE=SECRET)
    with pytest.raises(SettingsError) as raised:
        MtBridgeSettings.from_env()
    text = str(raised.value)
    assert "PIPWORKS_MTBRIDGE_SERVERS" in text
    assert message in text
    assert SECRET not in text


def test_the_kyc_account_must_be_on_a_configured_server_and_group(env) -> None:
    env(
        PIPWORKS_MTBRIDGE_SERVERS=LIVE,
        PIPWORKS_MTBRIDGE_PASSWORD_MT5_LIVE=SECRET,
        PIPWORKS_MTBRIDGE_KYC_SERVER="mt5-nowhere",
        PIPWORKS_MTBRIDGE_KYC_GROUP="real\\standard",
    )
    with pytest.raises(SettingsError, match="PIPWORKS_MTBRIDGE_KYC_SERVER"):
        MtBridgeSettings.from_env()
    env(PIPWORKS_MTBRIDGE_KYC_SERVER="mt5-live", PIPWORKS_MTBRIDGE_KYC_GROUP="demo\\standard")
    with pytest.raises(SettingsError, match="PIPWORKS_MTBRIDGE_KYC_GROUP: must be under"):
        MtBridgeSettings.from_env()


def test_margin_levels_must_be_positive_numbers(env) -> None:
    env(PIPWORKS_MTBRIDGE_MARGIN_CALL_LEVELS="100,abc")
    with pytest.raises(SettingsError, match="PIPWORKS_MTBRIDGE_MARGIN_CALL_LEVELS"):
        MtBridgeSettings.from_env()
    env(PIPWORKS_MTBRIDGE_MARGIN_CALL_LEVELS="100,-5")
    with pytest.raises(SettingsError, match="positive"):
        MtBridgeSettings.from_env()

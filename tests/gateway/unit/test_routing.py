"""Route table: parsing, precedence, and errors that name the variable."""

from __future__ import annotations

import os

import pytest

from pipworks_gateway.routing import parse_routes
from pipworks_gateway.settings import GatewaySettings
from pipworks_platform.settings import SettingsError


def test_a_service_route_beats_its_package_and_a_longer_package_a_shorter_one():
    table = parse_routes(
        "pipworks.kyc.v1=kyc:7062, pipworks.kyc.v1.ScreeningService=screening:7070,"
        "pipworks=fallback:7000"
    )
    assert table.target_for("pipworks.kyc.v1.KycService") == "kyc:7062"
    assert table.target_for("pipworks.kyc.v1.ScreeningService") == "screening:7070"
    assert table.target_for("pipworks.ib.v1.IbService") == "fallback:7000"
    assert table.target_for("other.v1.Service") is None
    assert table.targets == ["fallback:7000", "kyc:7062", "screening:7070"]


def test_a_package_covers_whole_name_segments_only():
    table = parse_routes("pipworks.kyc=kyc:7062")
    assert table.target_for("pipworks.kyc.v1.KycService") == "kyc:7062"
    assert table.target_for("pipworks.kycx.v1.KycService") is None


@pytest.mark.parametrize(
    "target",
    [
        "127.0.0.1:7061",
        "identity:7061",
        "identity.pipworks.svc:7061",
        "[::1]:7061",
        "dns:///identity.pipworks.svc:7061",
    ],
)
def test_targets_are_host_port(target):
    table = parse_routes(f"pipworks.identity.v1={target}")
    assert table.target_for("pipworks.identity.v1.IdentityService") == target


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "at least one route"),
        ("pipworks.ib.v1", "is not SERVICE_OR_PACKAGE=HOST:PORT"),
        ("pipworks.ib.v1=ib", "must be HOST:PORT"),
        ("pipworks.ib.v1=ib:0", "must be HOST:PORT"),
        ("pipworks.ib.v1=ib:99999", "must be HOST:PORT"),
        ("pipworks.ib.v1=http://ib:7063", "must be HOST:PORT"),
        ("pipworks/ib=ib:7063", "not a proto service or package name"),
        ("pipworks.ib.v1=ib:1,pipworks.ib.v1=ib:2", "routed more than once"),
        ("pipworks.ib.v1=ib:1,,", "stray comma"),
    ],
)
def test_bad_routes_are_refused_with_the_reason(text, problem):
    with pytest.raises(ValueError, match=problem):
        parse_routes(text)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ValueError, match=r"target of 'a\.b' must be HOST:PORT") as raised:
        parse_routes("a.b=x,c.d=y:1,c.d=y:2")
    assert "'c.d' is routed more than once" in str(raised.value)


def settings_problems(monkeypatch, **env: str) -> list[str]:
    for name in list(os.environ):
        if name.startswith("PIPWORKS_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        GatewaySettings.from_env()
    return raised.value.problems


def test_missing_routes_are_reported_naming_the_variable(monkeypatch):
    assert settings_problems(monkeypatch) == ["PIPWORKS_GATEWAY_ROUTES: is required"]


def test_malformed_routes_are_reported_naming_the_variable(monkeypatch):
    (problem,) = settings_problems(monkeypatch, PIPWORKS_GATEWAY_ROUTES="pipworks.ib.v1=ib")
    assert problem.startswith("PIPWORKS_GATEWAY_ROUTES: ")
    assert "must be HOST:PORT" in problem


def test_routes_to_apis_that_do_not_exist_are_reported(monkeypatch):
    (problem,) = settings_problems(
        monkeypatch,
        PIPWORKS_GATEWAY_ROUTES="pipworks.ib.v1=ib:7063,pipworks.idnetity.v1.IdentityService=i:1",
    )
    assert problem == (
        "PIPWORKS_GATEWAY_ROUTES: no known service or package is named "
        "pipworks.idnetity.v1.IdentityService"
    )


def test_bad_rate_limits_are_reported_naming_the_variable(monkeypatch):
    (problem,) = settings_problems(
        monkeypatch,
        PIPWORKS_GATEWAY_ROUTES="pipworks.ib.v1=ib:7063",
        PIPWORKS_GATEWAY_RATE_LIMITS="auth.ip=ten/20",
    )
    assert problem.startswith("PIPWORKS_GATEWAY_RATE_LIMITS: auth.ip: 'ten/20'")


def test_token_keys_come_from_the_routed_identity_unless_set(monkeypatch):
    routes = "pipworks.identity.v1=dns:///identity.pipworks.svc:7061"
    derived = GatewaySettings(gateway_routes=routes)
    assert derived.identity_address == "identity.pipworks.svc:7061"
    explicit = GatewaySettings(gateway_routes=routes, identity_address="keys:7061")
    assert explicit.identity_address == "keys:7061"
    assert GatewaySettings(gateway_routes="pipworks.ib.v1=ib:7063").identity_address is None

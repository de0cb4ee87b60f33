"""The suite file loader: the shipped file, defaults, and errors that name the bad key."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipworks_devstack.config import ConfigError, load_config

REPO_ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
[postgres]
[nats]
[[services]]
name = "alpha"
module = "alpha_service"
grpc_port = 50100
metrics_port = 9500
"""


def _load(tmp_path: Path, text: str):
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return load_config(path, base_dir=tmp_path)


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    return caught.value.problems


def test_shipped_suite_lists_the_gateway_the_services_and_the_simulator() -> None:
    config = load_config(REPO_ROOT / "deploy/local/suite.toml", base_dir=REPO_ROOT)
    assert [
        (s.name, s.module, s.grpc_port, s.metrics_port, s.database) for s in config.services
    ] == [
        ("gateway", "pipworks_gateway", 7060, 9460, False),
        ("identity", "pipworks_identity", 7061, 9461, True),
        ("kyc", "pipworks_kyc", 7062, 9462, True),
        ("ib", "pipworks_ib", 7063, 9463, True),
        ("antifraud", "pipworks_antifraud", 7064, 9464, True),
        ("mt5sim", "pipworks_mtbridge.mt5sim", 7090, 0, False),
        ("mtbridge", "pipworks_mtbridge", 7065, 9465, True),
    ]
    assert [s.name for s in config.services if not s.is_grpc] == ["mt5sim"]
    assert config.postgres.data_dir == REPO_ROOT / ".data/postgres"
    assert config.nats.store_dir == REPO_ROOT / ".data/nats"
    assert config.runner.secrets_file == REPO_ROOT / ".data/dev-secrets.json"
    assert [s.name for s in config.services if s.public] == ["gateway"]
    assert config.runner.shared_env == {"PIPWORKS_IDENTITY_ADDRESS": "{services.identity.address}"}


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    config = _load(tmp_path, MINIMAL)
    assert config.postgres.port == 15432
    assert (config.nats.port, config.nats.monitor_port) == (4222, 8222)
    assert config.postgres.data_dir == tmp_path / ".data/postgres"
    assert config.runner.startup_timeout == 60.0
    (service,) = config.services
    assert (service.database, service.public, dict(service.env)) == (False, False, {})


def test_unknown_key_is_named(tmp_path: Path) -> None:
    text = MINIMAL.replace("grpc_port = 50100", "grpc_port = 50100\ngrcp_port = 1")
    problems = _problems(tmp_path, text)
    assert len(problems) == 1
    assert problems[0].startswith("services[0] (alpha).grcp_port: unknown key")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = """
[postgres]
port = "5432"
[nats]
monitor_port = 70000
[runner]
startup_timeout = -1
[[services]]
name = "Alpha"
module = "alpha service"
grpc_port = 50100
metrics_port = 9500
database = "yes"
env = { GOOD = "x", BAD = 1 }
"""
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    message = str(caught.value)
    for expected in (
        "postgres.port: must be an integer from 0 to 65535",
        "nats.monitor_port: must be an integer",
        "runner.startup_timeout: must be a number of seconds",
        "services[0].name: must be [a-z][a-z0-9_]*, got 'Alpha'",
        "services[0].module: must be a dotted module",
        "services[0].database: must be true or false",
        "services[0].env.BAD: must be a string",
    ):
        assert expected in message
    assert str(tmp_path / "suite.toml") in message


def test_missing_required_keys(tmp_path: Path) -> None:
    problems = _problems(tmp_path, '[nats]\n[[services]]\nname = "alpha"\n')
    assert "postgres: is required" in problems
    assert "services[0] (alpha).module: is required" in problems
    assert "services[0] (alpha).grpc_port: is required" in problems


def test_clashes_between_services(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + """
public = true
[[services]]
name = "alpha"
module = "other"
grpc_port = 50100
metrics_port = 4222
public = true
"""
    )
    message = "\n".join(_problems(tmp_path, text))
    assert "name 'alpha' is used by more than one service" in message
    assert "grpc_port: port 50100 is also used by services (alpha).grpc_port" in message
    assert "metrics_port: port 4222 is also used by nats.port" in message
    assert "only one service may be public" in message


def test_reserved_database_name(tmp_path: Path) -> None:
    text = MINIMAL.replace('name = "alpha"', 'name = "postgres"') + "database = true\n"
    assert any("reserved by PostgreSQL" in p for p in _problems(tmp_path, text))


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    assert _problems(tmp_path, "[postgres\n")[0].startswith("not valid TOML")
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "absent.toml", base_dir=tmp_path)


def test_args_and_readiness_are_validated(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        MINIMAL.replace(
            'module = "alpha_service"',
            'module = "alpha_service"\nargs = ["--port", 1]\nreadiness = "http"',
        ),
    )
    assert any("args" in p and "array of strings" in p for p in problems)
    assert any("readiness" in p for p in problems)

"""LocalSuite moves the suite of ``make run`` onto free ports and a scratch directory."""

from __future__ import annotations

from pathlib import Path

from pipworks_devstack.config import load_config
from pipworks_devstack.devsecrets import load_or_create
from pipworks_devstack.environment import placeholders
from pipworks_devstack.local_suite import DEFAULT_SUITE_FILE, LocalSuite

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_every_port_and_state_path_is_moved_off_the_runners(tmp_path: Path) -> None:
    original = load_config(REPO_ROOT / DEFAULT_SUITE_FILE, base_dir=REPO_ROOT)
    suite = LocalSuite(tmp_path, repo_root=REPO_ROOT)

    ports = [s.grpc_port for s in suite.config.services]
    assert len(set(ports)) == len(ports)
    assert not set(ports) & {s.grpc_port for s in original.services}
    assert all(s.metrics_port == 0 for s in suite.config.services)
    assert suite.config.postgres.data_dir.is_relative_to(tmp_path)
    assert suite.config.nats.store_dir.is_relative_to(tmp_path)
    assert suite.config.runner.secrets_file.is_relative_to(tmp_path)
    sim = suite.service("mt5sim")
    assert sim.args[sim.args.index("--port") + 1] == str(sim.grpc_port)
    assert Path(sim.args[sim.args.index("--state-file") + 1]).is_relative_to(tmp_path)
    assert Path(suite.service("kyc").env["PIPWORKS_KYC_BLOB_DIR"]).is_relative_to(tmp_path)


def test_the_gateway_routes_to_the_moved_ports(tmp_path: Path) -> None:
    suite = LocalSuite(tmp_path, repo_root=REPO_ROOT)
    secrets = load_or_create(tmp_path / "secrets.json", [])
    routes = dict(
        entry.split("=")
        for entry in str(placeholders(suite.config.services, secrets)["routes"]).split(",")
    )
    assert routes["pipworks.ib.v1"] == suite.address("ib")
    assert "pipworks.gateway.v1" not in routes
    assert suite.gateway == suite.address("gateway")


def test_only_limits_the_suite(tmp_path: Path) -> None:
    suite = LocalSuite(tmp_path, repo_root=REPO_ROOT, only=["identity", "gateway"])
    assert sorted(suite.names) == ["gateway", "identity"]

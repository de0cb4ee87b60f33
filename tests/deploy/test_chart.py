"""The Helm chart, rendered by the real Helm engine and checked object by object.

Every rendered object is validated against the Kubernetes OpenAPI schemas (strict, the
newest version kubernetes-validate bundles); then the properties a platform engineer
relies on are asserted on the objects themselves.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest

from tests.deploy.conftest import CHART, KUBE_VERSION, NAMESPACE, RELEASE, load_values, render

BACKENDS = ["identity", "kyc", "ib", "antifraud", "mtbridge"]
GRPC_SERVICES = ["gateway", *BACKENDS]
VALUE_SETS = [(), ("values-production.yaml",), ("values-dev.yaml",)]
IDS = ["default", "production", "dev"]
# Kinds from CRDs the validator has no schema for; checked by hand below.
CUSTOM_KINDS = {"ServiceMonitor"}


def pod_specs(rendered) -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for kind in ("Deployment", "StatefulSet", "Job"):
        for obj in rendered.of_kind(kind):
            specs.append((f"{kind}/{obj['metadata']['name']}", obj["spec"]["template"]["spec"]))
    return specs


# -- the engine: lint and schema ---------------------------------------------------------


@pytest.mark.parametrize("files", VALUE_SETS, ids=IDS)
def test_lint_is_clean(files):
    report = helm.lint(CHART, load_values(*files), strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == []
    assert problems == []


@pytest.mark.parametrize("files", VALUE_SETS, ids=IDS)
def test_every_object_is_valid_kubernetes(rendered, files):
    result = rendered(*files)
    assert len(result.objects) > 30
    for obj in result.objects:
        if obj["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {exc.path}")
    names = [(o["kind"], o["metadata"]["name"]) for o in result.objects]
    assert len(names) == len(set(names)), "two objects share a kind and name"
    for obj in result.objects:
        assert obj["metadata"].get("namespace", NAMESPACE) == NAMESPACE
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_the_service_monitor_scrapes_the_metrics_port(rendered):
    (monitor,) = rendered("values-production.yaml").of_kind("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s"}
    ]
    selector = monitor["spec"]["selector"]["matchLabels"]
    services = rendered("values-production.yaml").of_kind("Service")
    scraped = [s for s in services if selector.items() <= s["metadata"]["labels"].items()]
    assert {p["name"] for s in scraped for p in s["spec"]["ports"]} >= {"metrics"}
    assert rendered().of_kind("ServiceMonitor") == []


# -- one template set per service ---------------------------------------------------------


@pytest.mark.parametrize("files", VALUE_SETS, ids=IDS)
def test_every_service_gets_the_full_set_of_objects(rendered, files):
    result = rendered(*files)
    for name in GRPC_SERVICES:
        for kind in ("Deployment", "Service", "ServiceAccount", "ConfigMap", "NetworkPolicy"):
            result.component(kind, name)
        deployment = result.component("Deployment", name)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"] == ["serve", name]
        assert container["envFrom"] == [{"configMapRef": {"name": f"{RELEASE}-pipworks-{name}"}}]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/component"] == name
        assert labels["app.kubernetes.io/name"] == "pipworks"
        assert labels["app.kubernetes.io/version"] == "0.1.0"


def test_services_come_and_go_by_values_alone(rendered):
    values = load_values()
    values["services"]["kyc"]["enabled"] = False
    result = render(values)
    assert not [o for o in result.objects if o["metadata"]["name"] == f"{RELEASE}-pipworks-kyc"]
    routes = result.component("ConfigMap", "gateway")["data"]["PIPWORKS_GATEWAY_ROUTES"]
    assert "pipworks.kyc.v1" not in routes
    assert "pipworks.ib.v1=dns:///pw-pipworks-ib.pipworks.svc.cluster.local:50051" in routes


def test_service_accounts_mount_no_token(rendered):
    for files in VALUE_SETS:
        result = rendered(*files)
        for account in result.of_kind("ServiceAccount"):
            assert account["automountServiceAccountToken"] is False
        for where, spec in pod_specs(result):
            assert spec["automountServiceAccountToken"] is False, where


# -- security defaults --------------------------------------------------------------------


@pytest.mark.parametrize("files", VALUE_SETS, ids=IDS)
def test_every_container_is_non_root_read_only_and_without_capabilities(rendered, files):
    specs = pod_specs(rendered(*files))
    assert len(specs) >= 11
    for where, spec in specs:
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, where
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for container in spec.get("initContainers", []) + spec["containers"]:
            ctx = container["securityContext"]
            assert ctx["runAsNonRoot"] is True, where
            assert ctx["runAsUser"] > 0, where
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["capabilities"] == {"drop": ["ALL"]}, where
            assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert "add" not in ctx["capabilities"], where
            assert container["resources"]["requests"], where


# -- probes, shutdown, disruption, scheduling ---------------------------------------------


@pytest.mark.parametrize("files", VALUE_SETS, ids=IDS)
def test_every_service_has_grpc_health_probes_and_a_matching_grace_period(rendered, files):
    result = rendered(*files)
    values = load_values(*files)
    shutdown = {"drainSeconds": 5, "graceSeconds": 20} | values.get("shutdown", {})
    for name in GRPC_SERVICES:
        spec = result.component("Deployment", name)["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        assert container["readinessProbe"]["grpc"] == {"port": 50051, "service": ""}
        assert container["livenessProbe"]["grpc"] == {"port": 50051, "service": "liveness"}
        assert container["startupProbe"]["grpc"] == {"port": 50051, "service": "liveness"}
        grace = shutdown["drainSeconds"] + shutdown["graceSeconds"]
        assert spec["terminationGracePeriodSeconds"] == grace + 10
        config = result.component("ConfigMap", name)["data"]
        assert float(config["PIPWORKS_SHUTDOWN_GRACE_SECONDS"]) == shutdown["graceSeconds"]
        assert float(config["PIPWORKS_SHUTDOWN_DRAIN_SECONDS"]) == shutdown["drainSeconds"]
        # The drain outlasts one readiness period, so endpoints drop the pod first.
        assert shutdown["drainSeconds"] >= container["readinessProbe"]["periodSeconds"]


def test_every_deployment_has_a_pdb_spread_and_anti_affinity(rendered):
    for files in [(), ("values-production.yaml",)]:
        result = rendered(*files)
        for deployment in result.of_kind("Deployment"):
            name = deployment["metadata"]["name"]
            pdb = result.named("PodDisruptionBudget", name)
            selector = deployment["spec"]["selector"]["matchLabels"]
            assert pdb["spec"]["selector"]["matchLabels"] == selector
            assert pdb["spec"]["maxUnavailable"] == 1
            spec = deployment["spec"]["template"]["spec"]
            zones = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
            assert zones == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
            assert "podAntiAffinity" in spec["affinity"]
            assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_production_is_highly_available(rendered):
    result = rendered("values-production.yaml")
    for name in GRPC_SERVICES:
        deployment = result.component("Deployment", name)
        assert "replicas" not in deployment["spec"]  # the autoscaler owns it
        hpa = result.component("HorizontalPodAutoscaler", name)
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": deployment["metadata"]["name"],
        }
        assert hpa["spec"]["minReplicas"] == 3
        assert hpa["spec"]["maxReplicas"] == 10
        affinity = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        assert "requiredDuringSchedulingIgnoredDuringExecution" in affinity
        config = result.component("ConfigMap", name)["data"]
        assert config["PIPWORKS_STREAM_REPLICAS"] == "3"
        assert len(config["PIPWORKS_NATS_URL"].split(",")) == 3
        assert config["OTEL_EXPORTER_OTLP_ENDPOINT"].startswith("http://otel-collector.")
        assert "deployment.environment=production" in config["OTEL_RESOURCE_ATTRIBUTES"]
    assert result.of_kind("StatefulSet") == []  # NATS is the external 3-server cluster
    (ingress,) = result.of_kind("Ingress")
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": f"{RELEASE}-pipworks-gateway", "port": {"name": "grpc"}}


def test_default_replicas_without_autoscaling(rendered):
    result = rendered()
    assert result.of_kind("HorizontalPodAutoscaler") == []
    for deployment in result.of_kind("Deployment"):
        assert deployment["spec"]["replicas"] == 2


def test_dev_runs_one_replica_of_everything_with_the_simulator(rendered):
    result = rendered("values-dev.yaml")
    for deployment in result.of_kind("Deployment"):
        assert deployment["spec"]["replicas"] == 1
    assert result.of_kind("PodDisruptionBudget") == []
    sim = result.component("Deployment", "mt5sim")
    (container,) = sim["spec"]["template"]["spec"]["containers"]
    assert container["args"][:2] == ["serve", "mt5sim"]
    assert container["args"][container["args"].index("--port") + 1] == "8443"
    assert container["readinessProbe"] == {
        "tcpSocket": {"port": "http"},
        "periodSeconds": 5,
        "failureThreshold": 3,
    }
    (nats,) = result.of_kind("StatefulSet")
    assert nats["spec"]["replicas"] == 1
    assert "--jetstream" in nats["spec"]["template"]["spec"]["containers"][0]["args"]
    bridge = result.component("ConfigMap", "mtbridge")["data"]
    sim_host = f"http://{RELEASE}-pipworks-mt5sim:8443"
    assert bridge["PIPWORKS_MTBRIDGE_SERVERS"] == (
        f"mt5-live={sim_host}|1000|real\\,mt5-demo={sim_host}|1000|demo\\"
    )
    assert result.component("ConfigMap", "kyc")["data"]["PIPWORKS_NATS_URL"] == (
        f"nats://{RELEASE}-pipworks-nats.{NAMESPACE}.svc.cluster.local:4222"
    )


def test_the_simulator_is_refused_in_production(rendered):
    values = load_values()
    values["services"]["mt5sim"]["enabled"] = True
    with pytest.raises(helm.HelmRenderError, match="the simulator is a development component"):
        render(values)


# -- configuration and secrets ------------------------------------------------------------


SECRET_LIKE = re.compile(r"postgres(ql)?(\+asyncpg)?://[^/]*:[^@]*@|[A-Za-z0-9+/]{40,}={0,2}")


@pytest.mark.parametrize("files", VALUE_SETS, ids=IDS)
def test_no_secret_value_lands_in_a_config_map(rendered, files):
    result = rendered(*files)
    values = load_values(*files)
    secret_values = {
        value
        for secret in result.of_kind("Secret")
        for value in secret.get("stringData", {}).values()
    }
    for svc in values.get("services", {}).values():
        secret_values |= set(svc.get("secretValues", {}).values())
        if svc.get("database", {}).get("url"):
            secret_values.add(svc["database"]["url"])
    if values.get("encryption", {}).get("keys"):
        secret_values.add(values["encryption"]["keys"])
    for config_map in result.of_kind("ConfigMap"):
        if config_map["metadata"]["name"].endswith("-dashboard"):
            continue
        for key, value in config_map["data"].items():
            assert not SECRET_LIKE.search(value), f"{config_map['metadata']['name']}.{key}"
            for secret in secret_values:
                assert secret not in value, f"{config_map['metadata']['name']}.{key}"
            assert "PASSWORD" not in key
            assert key not in {
                "PIPWORKS_DATABASE_URL",
                "PIPWORKS_ENCRYPTION_KEYS",
                "PIPWORKS_IDENTITY_SIGNING_KEYS",
            }
    if files == ("values-dev.yaml",):
        assert secret_values  # the dev render does hold secrets, all of them in Secrets


@pytest.mark.parametrize("files", VALUE_SETS, ids=IDS)
def test_secrets_are_referenced_and_pods_restart_when_config_changes(rendered, files):
    result = rendered(*files)
    values = load_values(*files)
    for name in BACKENDS:
        (container,) = result.component("Deployment", name)["spec"]["template"]["spec"][
            "containers"
        ]
        env = {e["name"]: e for e in container["env"]}
        ref = env["PIPWORKS_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        expected = (
            values["services"][name]["database"]["existingSecret"]
            if files != ("values-dev.yaml",)
            else ""
        )
        assert ref["name"] == (expected or f"{RELEASE}-pipworks-{name}-secrets")
        assert "secretKeyRef" in env["PIPWORKS_ENCRYPTION_KEYS"]["valueFrom"]
        assert all("value" not in e for e in env.values())
    identity = result.component("Deployment", "identity")["spec"]["template"]
    (container,) = identity["spec"]["containers"]
    assert "PIPWORKS_IDENTITY_SIGNING_KEYS" in {e["name"] for e in container["env"]}
    annotations = identity["metadata"]["annotations"]
    assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/config"])
    assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/secret"])
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "9464"


def test_a_config_change_changes_only_that_services_checksum(rendered):
    values = load_values()
    values["services"]["kyc"]["env"] = {"PIPWORKS_LOG_LEVEL": "DEBUG"}
    before, after = rendered(), render(values)

    def checksum(result, name):
        template = result.component("Deployment", name)["spec"]["template"]
        return template["metadata"]["annotations"]["checksum/config"]

    assert checksum(before, "kyc") != checksum(after, "kyc")
    assert checksum(before, "ib") == checksum(after, "ib")
    assert after.component("ConfigMap", "kyc")["data"]["PIPWORKS_LOG_LEVEL"] == "DEBUG"


def test_the_dev_render_is_accepted_by_each_services_own_settings(rendered, monkeypatch):
    """The environment a pod would see, fed to the service's real settings class."""
    import importlib

    result = rendered("values-dev.yaml")
    secrets = {s["metadata"]["name"]: s["stringData"] for s in result.of_kind("Secret")}
    for name in GRPC_SERVICES:
        (container,) = result.component("Deployment", name)["spec"]["template"]["spec"][
            "containers"
        ]
        env = dict(result.component("ConfigMap", name)["data"])
        for item in container.get("env", []):
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[ref["name"]][ref["key"]]
        for key in list(os.environ):
            if key.startswith("PIPWORKS_"):
                monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        definition = importlib.import_module(f"pipworks_{name}.main").DEFINITION
        settings = definition.settings_type.from_env()
        assert settings.nats_url.startswith("nats://")
        if name != "gateway":
            assert settings.migrate_on_start is False
            assert settings.require_database_url().startswith("postgresql+asyncpg://")
            assert settings.identity_address or name == "identity"
        if name == "gateway":
            assert len(settings.routes.targets) == len(BACKENDS)
        if name == "mtbridge":
            assert [s.name for s in settings.mtbridge_servers] == ["mt5-live", "mt5-demo"]


# -- migrations ---------------------------------------------------------------------------


@pytest.mark.parametrize("files", VALUE_SETS, ids=IDS)
def test_migrations_are_pre_install_and_pre_upgrade_hook_jobs(rendered, files):
    result = rendered(*files)
    jobs = {
        job["metadata"]["labels"]["pipworks.dev/migrates"]: job for job in result.of_kind("Job")
    }
    assert sorted(jobs) == sorted(BACKENDS)  # every service with a database, not the gateway
    for name, job in jobs.items():
        annotations = job["metadata"]["annotations"]
        assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
        assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
        spec = job["spec"]["template"]["spec"]
        assert spec["restartPolicy"] == "Never"
        (container,) = spec["containers"]
        assert container["args"] == ["migrate", name]
        env = {e["name"]: e for e in container["env"]}
        deployment = result.component("Deployment", name)
        (service_container,) = deployment["spec"]["template"]["spec"]["containers"]
        service_env = {e["name"]: e for e in service_container["env"]}
        assert env["PIPWORKS_DATABASE_URL"] == service_env["PIPWORKS_DATABASE_URL"]
        # Services wait for the job's head instead of racing it.
        config = result.component("ConfigMap", name)["data"]
        assert config["PIPWORKS_MIGRATE_ON_START"] == "false"
        assert float(config["PIPWORKS_MIGRATION_WAIT_SECONDS"]) > 0
    for secret in result.of_kind("Secret"):  # a Job's Secret must exist before the Job
        assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < 0


def test_without_the_job_services_migrate_at_start_up(rendered):
    values = load_values()
    values["migrations"] = {"job": False}
    result = render(values)
    assert result.of_kind("Job") == []
    for name in BACKENDS:
        assert result.component("ConfigMap", name)["data"]["PIPWORKS_MIGRATE_ON_START"] == "true"


# -- network policies ---------------------------------------------------------------------


def _allows(policy: dict[str, Any], direction: str, peer_component: str | None, port: int) -> bool:
    for rule in policy["spec"].get(direction, []):
        if port not in [p["port"] for p in rule.get("ports", [])]:
            continue
        peers = rule.get("from" if direction == "ingress" else "to")
        if peers is None:
            return True
        for peer in peers:
            labels = peer.get("podSelector", {}).get("matchLabels", {})
            if labels.get("app.kubernetes.io/component") == peer_component:
                return True
    return False


@pytest.mark.parametrize("files", VALUE_SETS, ids=IDS)
def test_deny_all_then_only_the_paths_each_service_needs(rendered, files):
    result = rendered(*files)
    deny = result.named("NetworkPolicy", f"{RELEASE}-pipworks-deny-all")
    assert deny["spec"]["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "pipworks", "app.kubernetes.io/instance": RELEASE}
    }
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny["spec"]
    assert "egress" not in deny["spec"]
    policies = {name: result.component("NetworkPolicy", name) for name in GRPC_SERVICES}

    # Only the gateway is reachable on its gRPC port by anything outside the release.
    for name, policy in policies.items():
        for rule in policy["spec"]["ingress"]:
            if 50051 in [p["port"] for p in rule["ports"]]:
                if name == "gateway":
                    continue
                assert rule.get("from"), f"{name} accepts gRPC from anywhere"
                callers = {
                    p["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                    for p in rule["from"]
                }
                expected = {"gateway"} | (
                    {"kyc", "ib", "antifraud", "mtbridge"} if name == "identity" else set()
                )
                assert callers == expected, name
    for name in BACKENDS:
        assert _allows(policies["gateway"], "egress", name, 50051)
        assert _allows(policies[name], "egress", "identity", 50051) or name == "identity"
        assert not _allows(policies[name], "egress", "kyc", 50051) or name == "kyc"
        assert _allows(policies[name], "egress", None, 5432)  # its database
    assert not _allows(policies["gateway"], "egress", None, 5432)
    for name, policy in policies.items():
        egress_ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
        assert 53 in egress_ports
        assert 4222 in egress_ports
        allowed = {53, 4222, 5432, 50051, 4317, 443, 8443}  # 8443: the dev MT5 simulator
        assert egress_ports <= allowed, f"{name} egress {egress_ports - allowed}"


def test_production_policies_name_their_peers(rendered):
    result = rendered("values-production.yaml")
    gateway = result.component("NetworkPolicy", "gateway")
    grpc_rule = next(r for r in gateway["spec"]["ingress"] if r["ports"][0]["port"] == 50051)
    assert grpc_rule["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]
    bridge = result.component("NetworkPolicy", "mtbridge")
    mt5 = [r for r in bridge["spec"]["egress"] if r["ports"] == [{"port": 443, "protocol": "TCP"}]]
    assert mt5 == [
        {
            "ports": [{"port": 443, "protocol": "TCP"}],
            "to": [{"ipBlock": {"cidr": "203.0.113.10/32"}}],
        }
    ]
    for name in GRPC_SERVICES:
        policy = result.component("NetworkPolicy", name)
        for rule in policy["spec"]["egress"]:
            ports = {p["port"] for p in rule["ports"]}
            assert rule.get("to"), f"{name} egress to anywhere on {ports}"
        otlp = [r for r in policy["spec"]["egress"] if r["ports"][0]["port"] == 4317]
        assert otlp, name
    kyc = result.component("NetworkPolicy", "kyc")
    assert any(p["port"] == 8080 for r in kyc["spec"]["ingress"] for p in r["ports"])
    assert result.component("ConfigMap", "kyc")["data"]["PIPWORKS_KYC_WEBHOOK_PORT"] == "8080"
    assert "PIPWORKS_KYC_WEBHOOK_PORT" not in rendered().component("ConfigMap", "kyc")["data"]


def test_dev_policies_let_the_bridge_reach_the_simulator_and_nats(rendered):
    result = rendered("values-dev.yaml")
    bridge = result.component("NetworkPolicy", "mtbridge")
    assert _allows(bridge, "egress", "mt5sim", 8443)
    sim = result.component("NetworkPolicy", "mt5sim")
    assert _allows(sim, "ingress", "mtbridge", 8443)
    assert not _allows(sim, "ingress", "gateway", 8443)
    assert _allows(bridge, "egress", "nats", 4222)
    nats = result.named("NetworkPolicy", f"{RELEASE}-pipworks-nats")
    assert nats["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "pipworks",
        "app.kubernetes.io/instance": RELEASE,
    }
    migrations = result.named("NetworkPolicy", f"{RELEASE}-pipworks-migrations")
    assert {p["port"] for r in migrations["spec"]["egress"] for p in r["ports"]} == {53, 5432}


# -- values: schema and validation helper -------------------------------------------------


def test_the_schema_rejects_unknown_services_and_wrong_types_with_clear_messages():
    values = load_values()
    values["services"]["gatewy"] = {"enabled": True}
    values["defaults"]["replicas"] = "two"
    values["nats"]["streamReplicas"] = 9
    values["services"]["kyc"]["database"]["url"] = "mysql://kyc@db/kyc"
    values["services"]["identity"]["secretEnv"] = {
        "PIPWORKS_IDENTITY_BOOTSTRAP_ADMIN_PASSWORD": {"key": "password"}
    }
    with pytest.raises(helm.HelmValuesError) as refused:
        render(values)
    message = str(refused.value)
    assert "additional properties 'gatewy' not allowed" in message
    assert "/defaults/replicas" in message
    assert "got string, want integer" in message
    assert "/nats/streamReplicas" in message
    assert "/services/kyc/database/url" in message
    assert "/services/identity/secretEnv/PIPWORKS_IDENTITY_BOOTSTRAP_ADMIN_PASSWORD" in message
    assert "secretName" in message


def test_a_bad_values_file_is_rejected_by_the_schema_alone(tmp_path):
    bad = {"services": {"identity": {"replicas": -1, "podAntiAffinity": "sometimes"}}}
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError) as refused:
        chart.validate_schema(chart.merge_values(bad))
    assert "/services/identity/replicas" in str(refused.value)
    assert "/services/identity/podAntiAffinity" in str(refused.value)


def test_the_validation_helper_reports_every_problem_at_once():
    values = load_values()
    values["services"]["gateway"]["enabled"] = False
    values["services"]["kyc"]["database"] = {"existingSecret": ""}
    values["encryption"] = {"existingSecret": "", "activeKey": ""}
    values["nats"] = {"url": ""}
    values["defaults"]["autoscaling"] = {"enabled": True, "minReplicas": 5, "maxReplicas": 2}
    values["services"]["identity"]["secretEnv"] = {"PIPWORKS_IDENTITY_SIGNING_KEYS": None}
    values["services"]["ib"]["probes"] = {"startupFailureThreshold": 10}
    with pytest.raises(helm.HelmRenderError) as refused:
        render(values)
    message = str(refused.value)
    for expected in (
        "exactly one enabled service must be public",
        "services.kyc.database: set existingSecret",
        "encryption: set existingSecret",
        "encryption.activeKey",
        "nats: set url",
        "minReplicas (5) is above maxReplicas (2)",
        "PIPWORKS_IDENTITY_SIGNING_KEYS",
        "services.ib.probes: the startup probe gives up after 50s, before migrations.waitSeconds",
    ):
        assert expected in message, expected


def test_values_are_documented_with_param_lines():
    text = (CHART / "values.yaml").read_text()
    documented = set(re.findall(r"^\s*## @param (\S+)", text, flags=re.MULTILINE))
    leaves = _leaf_paths(load_values(), prefix="")
    undocumented = [
        path
        for path in leaves
        if not any(path == d or path.startswith(d + ".") for d in documented)
    ]
    assert undocumented == []
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert set(schema["properties"]) >= set(load_values())
    assert set(schema["properties"]["services"]["properties"]) == set(load_values()["services"])


def _leaf_paths(node: Any, prefix: str) -> list[str]:
    if isinstance(node, dict) and node:
        paths = []
        for key, value in node.items():
            paths.extend(_leaf_paths(value, f"{prefix}.{key}" if prefix else key))
        return paths
    return [prefix]


# -- observability and notes --------------------------------------------------------------


def test_the_dashboard_covers_the_golden_signals_and_ships_as_a_config_map(rendered):
    (dashboard,) = [
        c
        for c in rendered("values-production.yaml").of_kind("ConfigMap")
        if c["metadata"]["name"].endswith("-dashboard")
    ]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(dashboard["data"]["pipworks.json"])
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p["targets"])
    for metric in (
        "pipworks_rpc_server_duration_seconds_count",
        "pipworks_rpc_server_duration_seconds_bucket",
        "pipworks_consumer_lag_messages",
        "pipworks_outbox_backlog",
        "pipworks_mtbridge_sync_lag_seconds",
        "pipworks_antifraud_alerts_raised_total",
    ):
        assert metric in exprs, metric
    from pipworks_mtbridge import metrics as bridge_metrics
    from pipworks_platform import metrics as platform_metrics

    assert platform_metrics.RPC_LATENCY._name == "pipworks_rpc_server_duration_seconds"
    assert platform_metrics.CONSUMER_LAG._name == "pipworks_consumer_lag_messages"
    assert platform_metrics.OUTBOX_BACKLOG._name == "pipworks_outbox_backlog"
    assert bridge_metrics.SYNC_LAG._name == "pipworks_mtbridge_sync_lag_seconds"
    assert not [
        c for c in rendered().of_kind("ConfigMap") if c["metadata"]["name"].endswith("-dashboard")
    ]


def test_notes_tell_how_to_reach_the_gateway_and_check_health(rendered):
    notes = rendered().notes
    assert f"port-forward service/{RELEASE}-pipworks-gateway 7060:443" in notes
    assert "grpc.health.v1.Health/Check" in notes
    assert "grpcurl api.broker.example:443 list" in rendered("values-production.yaml").notes
    assert "simulator" in rendered("values-dev.yaml").notes


def test_an_upgrade_renders_the_same_objects(rendered):
    upgrade = render(load_values("values-production.yaml"), is_upgrade=True)
    install = rendered("values-production.yaml")
    assert upgrade.objects == install.objects
    assert "upgraded" in upgrade.notes


@pytest.mark.parametrize("files", VALUE_SETS, ids=IDS)
def test_services_select_their_pods_and_only_the_gateway_has_a_virtual_ip(rendered, files):
    result = rendered(*files)
    for deployment in result.of_kind("Deployment"):
        name = deployment["metadata"]["name"]
        service = result.named("Service", name)
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pod_labels.items()
        assert deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]
        component = pod_labels["app.kubernetes.io/component"]
        if component == "gateway":
            assert "clusterIP" not in service["spec"]
        else:
            assert service["spec"]["clusterIP"] == "None", name  # client-side balancing


def test_the_gateway_service_type_is_configurable():
    values = load_values()
    values["services"]["gateway"]["service"] = {
        "type": "LoadBalancer",
        "port": 8443,
        "annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"},
    }
    result = render(values)
    service = result.component("Service", "gateway")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["spec"]["ports"][0] == {
        "name": "grpc",
        "port": 8443,
        "targetPort": "grpc",
        "protocol": "TCP",
        "appProtocol": "grpc",
    }
    assert service["metadata"]["annotations"] == {
        "service.beta.kubernetes.io/aws-load-balancer-type": "nlb"
    }
    assert "status.loadBalancer.ingress" in result.notes
    assert "grpcurl -plaintext $GATEWAY:8443 list" in result.notes
    for obj in result.objects:
        if obj["kind"] != "ServiceMonitor":
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)

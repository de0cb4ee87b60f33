"""The environment a locally run service gets: the same variables Kubernetes would set.

Values in the suite file's ``env`` tables may name things only known at start-up with
``{placeholders}``: ``{services.<name>.address}``, ``{routes}`` (the gateway's route
table: every non-public service's ``pipworks.<name>.v1`` package and address), and
``{secrets.signing_keys}``, ``{secrets.signing_key_id}``, ``{secrets.admin_password}``,
``{secrets.mt5sim_password}`` from the development secrets file.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from types import SimpleNamespace

from pipworks_devstack.config import ServiceConfig
from pipworks_devstack.devsecrets import DevSecrets

_log = logging.getLogger(__name__)


def placeholders(services: Sequence[ServiceConfig], secrets: DevSecrets) -> dict[str, object]:
    """What ``{...}`` in an env value can refer to, for the services that will run."""
    addresses = {s.name: SimpleNamespace(address=f"127.0.0.1:{s.grpc_port}") for s in services}
    routes = ",".join(
        f"pipworks.{s.name}.v1=127.0.0.1:{s.grpc_port}"
        for s in services
        if s.is_grpc and not s.public
    )
    return {
        "services": SimpleNamespace(**addresses),
        "routes": routes,
        "secrets": SimpleNamespace(
            signing_keys=secrets.signing_keys_env,
            signing_key_id=secrets.active_signing_key_id,
            admin_password=secrets.admin_password,
            mt5sim_password=secrets.mt5sim_password,
        ),
    }


def expand(env: Mapping[str, str], values: Mapping[str, object], *, owner: str) -> dict[str, str]:
    """Fill placeholders; a variable naming a service that is not running is left out."""
    expanded: dict[str, str] = {}
    for name, template in env.items():
        try:
            expanded[name] = template.format_map(values)
        except (KeyError, AttributeError, IndexError, ValueError) as exc:
            _log.warning("%s: %s left unset (%s is not available)", owner, name, exc)
    return expanded


def service_env(
    service: ServiceConfig,
    *,
    base: Mapping[str, str],
    nats_url: str,
    database_url: str | None,
    secrets: DevSecrets,
    shared_env: Mapping[str, str] | None = None,
    values: Mapping[str, object] | None = None,
) -> dict[str, str]:
    """``base`` (the runner's own environment) plus the service's settings.

    The suite's ``shared_env`` applies to every service; the service's own ``env``
    table wins over everything else, so a developer can override any variable for
    one service.
    """
    env = dict(base)
    env.update(
        {
            "PIPWORKS_ENVIRONMENT": "development",
            "PIPWORKS_GRPC_ADDRESS": f"127.0.0.1:{service.grpc_port}",
            "PIPWORKS_METRICS_PORT": str(service.metrics_port),  # 0: no endpoint
            "PIPWORKS_NATS_URL": nats_url,
            "PIPWORKS_ENCRYPTION_KEYS": secrets.encryption_keys_env,
            "PIPWORKS_ENCRYPTION_ACTIVE_KEY": secrets.active_key_id,
            "PIPWORKS_LOG_LEVEL": base.get("PIPWORKS_LOG_LEVEL", "INFO"),
            "OTEL_SERVICE_NAME": f"pipworks-{service.name}",
            # Logs must reach the terminal as they are written, not when a buffer fills.
            "PYTHONUNBUFFERED": "1",
        }
    )
    if database_url is not None:
        env["PIPWORKS_DATABASE_URL"] = database_url
    else:
        env.pop("PIPWORKS_DATABASE_URL", None)
    values = values or {}
    env.update(expand(shared_env or {}, values, owner=service.name))
    env.update(expand(service.env, values, owner=service.name))
    return env

"""The environment a locally run service gets: the same variables Kubernetes would set."""

from __future__ import annotations

from collections.abc import Mapping

from pipworks_devstack.config import ServiceConfig
from pipworks_devstack.devsecrets import DevSecrets


def service_env(
    service: ServiceConfig,
    *,
    base: Mapping[str, str],
    nats_url: str,
    database_url: str | None,
    secrets: DevSecrets,
) -> dict[str, str]:
    """``base`` (the runner's own environment) plus the service's settings.

    The service's ``env`` table from the suite file wins over everything else, so a
    developer can override any variable for one service.
    """
    env = dict(base)
    env.update(
        {
            "PIPWORKS_ENVIRONMENT": "development",
            "PIPWORKS_GRPC_ADDRESS": f"127.0.0.1:{service.grpc_port}",
            "PIPWORKS_METRICS_PORT": str(service.metrics_port),
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
    env.update(service.env)
    return env

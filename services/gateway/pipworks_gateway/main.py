"""Composition root of the gateway: ``python -m pipworks_gateway``.

The platform runtime puts the gateway's pieces in this order on every call: tracing →
access log and error mapping → authentication and policy (the platform's, by the
proxied method's proto policy) → rate limits → the proxy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipworks_gateway import __version__
from pipworks_gateway.catalogue import Catalogue
from pipworks_gateway.proxy import Backends, GatewayProxy
from pipworks_gateway.ratelimit import RateLimiter, RateLimitInterceptor
from pipworks_gateway.settings import GatewaySettings
from pipworks_platform.runtime import Components, Infrastructure, ServiceDefinition, run_service


@dataclass(frozen=True)
class Gateway:
    proxy: GatewayProxy
    rate_limits: RateLimitInterceptor
    backends: Backends

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> Gateway:
        routes = settings.routes
        backends = Backends(routes.targets, max_message_bytes=settings.max_message_bytes)
        limiter = RateLimiter(settings.rate_limits, max_keys=settings.gateway_rate_limit_max_keys)
        return cls(
            proxy=GatewayProxy(Catalogue.load(), routes, backends),
            rate_limits=RateLimitInterceptor(limiter),
            backends=backends,
        )

    def components(self) -> Components:
        return Components(
            api=[],
            generic_handlers=[self.proxy],
            interceptors=[self.rate_limits],
            reflection_services=self.proxy.services,
            on_stop=[self.backends.close],
        )


def build(infra: Infrastructure) -> Components:
    if not isinstance(infra.settings, GatewaySettings):
        raise TypeError("the gateway runs with GatewaySettings")
    return Gateway.from_settings(infra.settings).components()


DEFINITION = ServiceDefinition(
    name="gateway",
    version=__version__,
    build=build,
    migrations=None,
    settings_type=GatewaySettings,
    publishes_events=False,
    uses_nats=False,
)


def main(argv: Sequence[str] | None = None) -> None:
    run_service(DEFINITION, argv)

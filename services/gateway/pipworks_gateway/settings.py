"""Gateway settings: the platform's, plus routes and rate limits (``PIPWORKS_GATEWAY_*``)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from pipworks_gateway.catalogue import Catalogue
from pipworks_gateway.ratelimit import Limit, LimitKey, parse_rate_limits
from pipworks_gateway.routing import RouteTable, parse_routes
from pipworks_platform.settings import ServiceSettings

IDENTITY_SERVICE = "pipworks.identity.v1.IdentityService"


class GatewaySettings(ServiceSettings):
    # SERVICE_OR_PACKAGE=HOST:PORT,...  e.g. pipworks.identity.v1=identity:7061
    gateway_routes: str
    # CLASS.SCOPE=RATE/BURST overrides, e.g. auth.ip=10/20,default.subject=off
    gateway_rate_limits: str = ""
    # Buckets kept per limit before the least recently used are dropped.
    gateway_rate_limit_max_keys: int = Field(default=100_000, ge=100, le=10_000_000)

    @model_validator(mode="before")
    @classmethod
    def _identity_from_routes(cls, data: Any) -> Any:
        """Fetch token keys from the identity backend the gateway routes to, unless told."""
        if isinstance(data, dict) and not data.get("identity_address"):
            try:
                target = parse_routes(str(data.get("gateway_routes", ""))).target_for(
                    IDENTITY_SERVICE
                )
            except ValueError:
                return data  # reported against PIPWORKS_GATEWAY_ROUTES by its own validator
            if target is not None:
                data = {**data, "identity_address": target.removeprefix("dns:///")}
        return data

    @field_validator("gateway_routes")
    @classmethod
    def _known_routes(cls, value: str) -> str:
        unknown = parse_routes(value).unknown_prefixes(Catalogue.load().service_names)
        if unknown:
            raise ValueError(f"no known service or package is named {', '.join(unknown)}")
        return value

    @field_validator("gateway_rate_limits")
    @classmethod
    def _valid_limits(cls, value: str) -> str:
        parse_rate_limits(value)
        return value

    @property
    def routes(self) -> RouteTable:
        return parse_routes(self.gateway_routes)

    @property
    def rate_limits(self) -> dict[LimitKey, Limit | None]:
        return parse_rate_limits(self.gateway_rate_limits)

"""Composition root of the identity service.

``python -m pipworks_identity [serve|migrate]`` runs on the shared runtime;
``python -m pipworks_identity verify-audit`` checks the audit log's hash chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

import structlog

from pipworks.identity.v1 import identity_service_pb2, identity_service_pb2_grpc
from pipworks_identity import __version__
from pipworks_identity.adapters.access_tokens import AccessTokenIssuer
from pipworks_identity.adapters.password_hasher import PasswordHasher
from pipworks_identity.adapters.totp import Totp
from pipworks_identity.api import IdentityApi
from pipworks_identity.domain.passwords import PasswordPolicy
from pipworks_identity.handlers import Deps, staff
from pipworks_identity.handlers.consumers import Consumers
from pipworks_identity.housekeeper import Housekeeper
from pipworks_identity.settings import IdentitySettings
from pipworks_identity.validation import RequestParser
from pipworks_platform.auth import JwksFetch
from pipworks_platform.auth.jwks import JwkSet
from pipworks_platform.consumer import Subscription
from pipworks_platform.runtime import Components, Infrastructure, ServiceDefinition, run_service
from pipworks_platform.server import ApiService

log = structlog.get_logger(__name__)


def build_deps(infra: Infrastructure) -> Deps:
    settings = _settings(infra)
    password_policy = PasswordPolicy()
    return Deps(
        uow=infra.unit_of_work,
        hasher=PasswordHasher(settings.argon2),
        totp=Totp(settings.identity_totp_issuer),
        tokens=AccessTokenIssuer(
            settings.signing_keys,
            issuer=settings.auth_issuer,
            audience=settings.auth_audience,
            lifetime=settings.lifetimes.access_token,
        ),
        cipher=infra.cipher,
        config=settings.identity_config(password_policy),
    )


async def build(infra: Infrastructure) -> Components:
    settings = _settings(infra)
    deps = build_deps(infra)
    await _bootstrap_admin(deps, settings)
    housekeeper = Housekeeper(deps)
    api = IdentityApi(
        deps,
        RequestParser(deps.config.password_policy),
        jwks=deps.tokens.keys.jwks,
        describe=infra.service_info,
    )
    return Components(
        api=[
            ApiService.of(identity_service_pb2, identity_service_pb2_grpc, "IdentityService", api)
        ],
        subscriptions=subscriptions(Consumers(deps)),
        background=[housekeeper.run],
        on_stop=[housekeeper.stop],
    )


def subscriptions(consumers: Consumers) -> list[Subscription]:
    return [
        Subscription(
            durable="identity-kyc-levels",
            subjects=["pipworks.kyc.v1.application.approved", "pipworks.kyc.v1.level.changed"],
            handler=consumers.on_kyc_level,
        ),
        Subscription(
            durable="identity-antifraud-restrictions",
            subjects=[
                "pipworks.antifraud.v1.client.restricted",
                "pipworks.antifraud.v1.client.unrestricted",
            ],
            handler=consumers.on_restriction_changed,
        ),
    ]


def local_jwks(infra: Infrastructure) -> JwksFetch:
    """Identity verifies tokens with its own public keys, without calling itself."""
    keys = _settings(infra).signing_keys.jwks()

    async def fetch() -> JwkSet:
        return keys

    return fetch


async def _bootstrap_admin(deps: Deps, settings: IdentitySettings) -> None:
    email, password = (
        settings.identity_bootstrap_admin_email,
        settings.identity_bootstrap_admin_password,
    )
    if email is None or password is None:
        return
    created = await staff.bootstrap_admin(
        deps, email, password.get_secret_value(), settings.identity_bootstrap_admin_country
    )
    log.info("bootstrap admin checked", created=created)


def _settings(infra: Infrastructure) -> IdentitySettings:
    return cast(IdentitySettings, infra.settings)


DEFINITION = ServiceDefinition(
    name="identity",
    version=__version__,
    build=build,
    migrations=Path(__file__).parent / "migrations",
    settings_type=IdentitySettings,
    jwks_source=local_jwks,
)


def main(argv: Sequence[str] | None = None) -> None:
    run_service(DEFINITION, argv)

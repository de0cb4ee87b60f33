"""Events from other services: registrations create KYC profiles; anti-fraud signals
feed the risk rating."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import structlog

from pipworks.events.v1 import antifraud_pb2, identity_pb2
from pipworks_kyc.adapters.repositories import ProfileRepository
from pipworks_kyc.handlers.context import Deps, audit
from pipworks_platform.audit import SYSTEM_ACTOR
from pipworks_platform.consumer import InboundEvent, PermanentError
from pipworks_platform.db import UnitOfWork

log = structlog.get_logger(__name__)
_COUNTRY = re.compile(r"[A-Z]{2}")


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise PermanentError("user_id is not a UUID") from None


class Consumers:
    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def on_user_registered(self, event: InboundEvent, uow: UnitOfWork) -> None:
        message = event.message
        if not isinstance(message, identity_pb2.UserRegistered):
            raise PermanentError(f"unexpected event type {type(message).__name__}")
        user_id = _uuid(message.user_id)
        country = message.country_code.upper()
        if not _COUNTRY.fullmatch(country):
            country = ""
        registered_at = (
            message.registered_at.ToDatetime(tzinfo=UTC)
            if message.HasField("registered_at")
            else self._deps.clock()
        )
        if await ProfileRepository(uow.session).create(user_id, country, registered_at):
            await audit(
                uow,
                SYSTEM_ACTOR,
                "kyc.profile.created",
                f"user:{user_id}",
                self._deps.clock(),
                country_code=country,
            )
            log.info("kyc profile created", user_id=str(user_id))

    async def on_antifraud(self, event: InboundEvent, uow: UnitOfWork) -> None:
        message = event.message
        now: datetime = self._deps.clock()
        profiles = ProfileRepository(uow.session)
        if isinstance(message, antifraud_pb2.AntifraudAlertRaised):
            await profiles.antifraud_signal(_uuid(message.user_id), now, alert=True)
        elif isinstance(message, antifraud_pb2.AntifraudClientRestricted):
            await profiles.antifraud_signal(_uuid(message.user_id), now, restricted=True)
        elif isinstance(message, antifraud_pb2.AntifraudClientUnrestricted):
            await profiles.antifraud_signal(_uuid(message.user_id), now, restricted=False)
        else:
            raise PermanentError(f"unexpected event type {type(message).__name__}")

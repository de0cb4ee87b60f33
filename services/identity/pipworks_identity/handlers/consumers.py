"""Events from kyc and antifraud, applied through the platform's inbox consumers.

The KYC level is set to the absolute value the event carries and restrictions are keyed
by their record id, so a redelivery, or the same fact under another event id, changes
nothing the second time.
"""

from __future__ import annotations

import uuid

import structlog

from pipworks.events.v1 import antifraud_pb2, kyc_pb2
from pipworks_identity.adapters.repositories import (
    LoginRestrictionRepository,
    SessionRepository,
    UserRepository,
)
from pipworks_identity.handlers.context import Deps
from pipworks_platform.consumer import InboundEvent, PermanentError
from pipworks_platform.db import UnitOfWork

log = structlog.get_logger(__name__)


class Consumers:
    """Identity's event handlers, bound to its dependencies."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps

    async def on_kyc_level(self, event: InboundEvent, uow: UnitOfWork) -> None:
        """Approvals and level changes share one consumer, so they apply in order."""
        message = event.message
        if not isinstance(message, kyc_pb2.KycApplicationApproved | kyc_pb2.KycLevelChanged):
            raise PermanentError(f"unexpected event type {type(message).__name__}")
        if message.level < 0:
            raise PermanentError("level is negative")
        user_id = _uuid(message.user_id)
        if not await UserRepository(uow.session).set_kyc_level(
            user_id, message.level, self._deps.clock()
        ):
            raise PermanentError(f"unknown user {user_id}")
        log.info("kyc level set", user_id=str(user_id), level=message.level)

    async def on_restriction_changed(self, event: InboundEvent, uow: UnitOfWork) -> None:
        """A login restriction ends every session at once; lifting it allows new logins."""
        message = event.message
        if isinstance(message, antifraud_pb2.AntifraudClientRestricted):
            if not message.login:
                return
            user_id = _uuid(message.user_id)
            restriction_id = message.restriction_id or f"event:{event.event_id}"
            now = self._deps.clock()
            if await LoginRestrictionRepository(uow.session).add(
                user_id, restriction_id, message.case_id, message.reason, now
            ):
                ended = await SessionRepository(uow.session).revoke_all(
                    user_id, now, "antifraud_restriction"
                )
                log.info("login restricted", user_id=str(user_id), sessions_ended=ended)
        elif isinstance(message, antifraud_pb2.AntifraudClientUnrestricted):
            # Records are kept per restriction: lifting one drops it whatever the flags say
            # (another restriction may still block logins and keeps its own record).
            if not message.restriction_id and not message.login:
                return
            user_id = _uuid(message.user_id)
            if await LoginRestrictionRepository(uow.session).lift(user_id, message.restriction_id):
                log.info("login restriction lifted", user_id=str(user_id))
        else:
            raise PermanentError(f"unexpected event type {type(message).__name__}")


def _uuid(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise PermanentError("user_id is not a UUID") from None

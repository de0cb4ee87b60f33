"""Builders of the ``pipworks.events.v1`` messages identity publishes through the outbox."""

from __future__ import annotations

import uuid
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp

from pipworks.events.v1 import identity_pb2
from pipworks_identity.domain.sessions import ClientInfo

Reason = identity_pb2.LoginFailureReason


def timestamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def login_failed(
    user_id: uuid.UUID | None, client: ClientInfo, reason: int, now: datetime
) -> identity_pb2.LoginFailed:
    return identity_pb2.LoginFailed(
        user_id=str(user_id) if user_id else "",
        ip_address=client.ip_address,
        user_agent=client.user_agent,
        device_id=client.device_id,
        reason=reason,
        occurred_at=timestamp(now),
    )


def login_succeeded(
    user_id: uuid.UUID, session_id: uuid.UUID, aal: int, client: ClientInfo, now: datetime
) -> identity_pb2.LoginSucceeded:
    return identity_pb2.LoginSucceeded(
        user_id=str(user_id),
        session_id=str(session_id),
        ip_address=client.ip_address,
        user_agent=client.user_agent,
        device_id=client.device_id,
        aal=aal,
        occurred_at=timestamp(now),
    )


def user_locked(user_id: uuid.UUID, until: datetime, attempts: int) -> identity_pb2.UserLocked:
    return identity_pb2.UserLocked(
        user_id=str(user_id), locked_until=timestamp(until), failed_attempts=attempts
    )


def role_changed(
    user_id: uuid.UUID, role: str, *, granted: bool, actor: str, now: datetime
) -> identity_pb2.RoleChanged:
    return identity_pb2.RoleChanged(
        user_id=str(user_id), role=role, granted=granted, actor_id=actor, occurred_at=timestamp(now)
    )


def email_verification_requested(
    user_id: uuid.UUID, email: str, token: str, expires_at: datetime
) -> identity_pb2.EmailVerificationRequested:
    return identity_pb2.EmailVerificationRequested(
        user_id=str(user_id), email=email, token=token, expires_at=timestamp(expires_at)
    )

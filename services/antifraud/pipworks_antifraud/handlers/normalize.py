"""Incoming events → engine facts. Content the engine cannot use is refused with the reason
as :class:`PermanentError`, so the consumer dead-letters it instead of retrying."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from pipworks.events.v1 import identity_pb2, kyc_pb2, mtbridge_pb2
from pipworks_antifraud.domain.engine import Fact
from pipworks_antifraud.domain.geo import GeoResolver
from pipworks_platform.consumer import InboundEvent, PermanentError

MAX_AMOUNT = Decimal("1e15")
_KINDS = {
    mtbridge_pb2.MT_OPERATION_KIND_DEPOSIT: "DEPOSIT",
    mtbridge_pb2.MT_OPERATION_KIND_WITHDRAWAL: "WITHDRAWAL",
    mtbridge_pb2.MT_OPERATION_KIND_CREDIT: "CREDIT",
    mtbridge_pb2.MT_OPERATION_KIND_IB_PAYOUT: "IB_PAYOUT",
}
_RISK = {
    kyc_pb2.KYC_RISK_RATING_LOW: "LOW",
    kyc_pb2.KYC_RISK_RATING_MEDIUM: "MEDIUM",
    kyc_pb2.KYC_RISK_RATING_HIGH: "HIGH",
}


def key_digest(kind: str, value: str) -> str:
    """Shared-by index keys are stored as digests: no raw IPs or card fingerprints at rest."""
    return hashlib.sha256(f"{kind}:{value.strip().lower()}".encode()).hexdigest()[:32]


def _user(user_id: str) -> str:
    try:
        return str(uuid.UUID(user_id))
    except ValueError:
        raise PermanentError(f"user_id {user_id[:64]!r} is not a UUID") from None


def _time(stamp: Timestamp, fallback: datetime | None, field: str) -> float:
    if stamp.seconds or stamp.nanos:
        return stamp.seconds + stamp.nanos / 1e9
    if fallback is not None:
        return fallback.timestamp()
    raise PermanentError(f"{field} is missing")


def _decimal(text: str, field: str, *, required: bool = True) -> Decimal:
    if not text and not required:
        return Decimal(0)
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise PermanentError(f"{field} {text[:40]!r} is not a decimal") from None
    if not value.is_finite() or abs(value) > MAX_AMOUNT:
        raise PermanentError(f"{field} {text[:40]!r} is out of range")
    return value


def _country(code: str, field: str) -> str:
    code = code.strip().upper()
    if code and (len(code) != 2 or not code.isalpha()):
        raise PermanentError(f"{field} {code[:10]!r} is not an ISO 3166 alpha-2 code")
    return code


def to_fact(event: InboundEvent, geo: GeoResolver) -> Fact | None:
    """The fact for ``event``; None for an event the engine has no use for."""
    m = event.message
    event_id, subject = str(event.event_id), event.subject
    if isinstance(m, mtbridge_pb2.MtBalanceChanged):
        return _balance(event_id, subject, m, event.occurred_at)
    if isinstance(m, mtbridge_pb2.MtDealExecuted):
        return _deal(event_id, subject, m, event.occurred_at)
    if isinstance(m, identity_pb2.LoginFailed) and not m.user_id:
        return None  # a failed login for an unknown account concerns no client
    if isinstance(m, identity_pb2.LoginSucceeded | identity_pb2.LoginFailed):
        return _login(event_id, subject, m, event.occurred_at, geo)
    if isinstance(m, identity_pb2.UserRegistered):
        at = _time(m.registered_at, event.occurred_at, "registered_at")
        return Fact.make(
            event_id,
            subject,
            _user(m.user_id),
            "REGISTERED",
            at,
            registered_country=_country(m.country_code, "country_code"),
        )
    if isinstance(m, kyc_pb2.KycApplicationApproved):
        at = _time(m.approved_at, event.occurred_at, "approved_at")
        return Fact.make(
            event_id,
            subject,
            _user(m.user_id),
            "KYC_APPROVED",
            at,
            kyc_country=_country(m.country_code, "country_code"),
            risk_rating=_RISK.get(m.risk_rating, ""),
        )
    if isinstance(m, mtbridge_pb2.MtAccountOpened):
        at = _time(m.opened_at, event.occurred_at, "opened_at")
        return Fact.make(event_id, subject, _user(m.user_id), "ACCOUNT_OPENED", at)
    return None


def _balance(
    event_id: str, subject: str, m: mtbridge_pb2.MtBalanceChanged, occurred: datetime | None
) -> Fact:
    kind = _KINDS.get(m.operation_kind)
    if kind is None:
        raise PermanentError(f"operation_kind {m.operation_kind} is not a known kind")
    amount = abs(_decimal(m.amount, "amount"))
    currency = m.currency.strip().upper()
    if not currency or len(currency) > 10:
        raise PermanentError(f"currency {m.currency[:12]!r} is not a currency code")
    payment = m.payment
    keys = {}
    if payment.instrument_fingerprint:
        keys["instrument"] = key_digest("instrument", payment.instrument_fingerprint)
    return Fact.make(
        event_id,
        subject,
        _user(m.user_id),
        kind,
        _time(m.executed_at, occurred, "executed_at"),
        keys,
        amount=amount,
        currency=currency,
        payment_method=payment.method.strip().upper(),
        payment_country=_country(payment.country_code, "payment.country_code"),
    )


def _deal(
    event_id: str, subject: str, m: mtbridge_pb2.MtDealExecuted, occurred: datetime | None
) -> Fact:
    if m.entry not in (0, 1, 2, 3):
        raise PermanentError(f"entry {m.entry} is not 0-3")
    volume = _decimal(m.volume_lots, "volume_lots")
    if volume < 0:
        raise PermanentError("volume_lots is negative")
    return Fact.make(
        event_id,
        subject,
        _user(m.user_id),
        "TRADE",
        _time(m.executed_at, occurred, "executed_at"),
        volume=volume,
        price=_decimal(m.price, "price", required=False),
        profit=_decimal(m.profit, "profit", required=False),
        entry=Decimal(m.entry),
        symbol=m.symbol[:32],
        currency=m.currency.strip().upper()[:10],
        position_id=f"{m.server}:{m.login}:{m.position_id}" if m.position_id else "",
    )


def _login(
    event_id: str, subject: str, m: Message, occurred: datetime | None, geo: GeoResolver
) -> Fact:
    assert isinstance(m, identity_pb2.LoginSucceeded | identity_pb2.LoginFailed)
    kind = "LOGIN" if isinstance(m, identity_pb2.LoginSucceeded) else "LOGIN_FAILED"
    keys = {}
    if m.device_id:
        keys["device"] = key_digest("device", m.device_id)
    if m.ip_address:
        keys["ip"] = key_digest("ip", m.ip_address)
    location = geo.locate(m.ip_address) if m.ip_address else None
    extra: dict[str, object] = {}
    if location is not None:
        extra = {
            "geo_known": True,
            "country": location.country,
            "latitude": location.latitude,
            "longitude": location.longitude,
        }
    return Fact.make(
        event_id,
        subject,
        _user(m.user_id),
        kind,
        _time(m.occurred_at, occurred, "occurred_at"),
        keys,
        **extra,
    )

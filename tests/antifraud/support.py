"""An in-process antifraud on real PostgreSQL, NATS and gRPC sockets, and event builders."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from pipworks.antifraud.v1 import antifraud_service_pb2_grpc as pb_grpc
from pipworks.common.v1 import payment_pb2
from pipworks.events.v1 import identity_pb2, kyc_pb2, mtbridge_pb2
from pipworks_antifraud.main import DEFINITION, Deps, assemble, build_deps
from pipworks_antifraud.settings import SAMPLE_GEOIP_CSV, AntifraudSettings
from pipworks_platform.runtime import Components, Infrastructure
from tests.harness import InProcessService, RunningService, in_process
from tests.helpers import publish
from tests.tokens import TokenAuthority

Metadata = tuple[tuple[str, str], ...]
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)


def officer(authority: TokenAuthority, *, role: str = "compliance", aal: int = 2) -> Metadata:
    return authority.metadata(subject=str(uuid.uuid4()), roles=(role,), aal=aal, mfa=aal == 2)


@dataclass
class Antifraud(RunningService):
    service: InProcessService
    deps: Deps
    stub: pb_grpc.AntifraudServiceStub

    async def publish(self, message: Message, event_id: str | None = None) -> str:
        """Publish ``message`` on NATS as its producing service's outbox relay would."""
        event_id = event_id or str(uuid.uuid4())
        await publish(self.nats.jetstream(), message, event_id)
        return event_id

    async def evaluated(self) -> int:
        return int(await self.scalar("SELECT count(*) FROM evaluated_events"))


def settings_for(database_url: str, nats_url: str, **overrides: Any) -> AntifraudSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "nats_url": nats_url,
        "metrics_port": 0,
        "antifraud_geoip_csv": SAMPLE_GEOIP_CSV,
        "antifraud_expiry_interval_seconds": 3600,
        **overrides,
    }
    return AntifraudSettings(**values)


@contextlib.asynccontextmanager
async def running_antifraud(
    database_url: str,
    nats_url: str,
    authority: TokenAuthority,
    *,
    relay: bool = False,
    consumers: bool = True,
    **overrides: Any,
) -> AsyncIterator[Antifraud]:
    """``consumers`` starts the event consumers, the rule refresh and the expiry loop."""
    built: list[Deps] = []

    def build(infra: Infrastructure) -> Components:
        built.append(build_deps(infra))
        return assemble(built[0], infra)

    async with in_process(
        DEFINITION,
        settings_for(database_url, nats_url, **overrides),
        build=build,
        jwks_source=authority.jwks_source(),
        relay=relay,
        consumers=consumers,
        background=consumers,
    ) as service:
        yield Antifraud(service, built[0], pb_grpc.AntifraudServiceStub(service.channel))


# -- events -----------------------------------------------------------------------------


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def deposit(
    user: uuid.UUID,
    amount: str,
    at: datetime,
    *,
    currency: str = "USD",
    instrument: str = "",
    country: str = "",
) -> mtbridge_pb2.MtBalanceChanged:
    return mtbridge_pb2.MtBalanceChanged(
        user_id=str(user),
        server="mt5-test",
        login=1001,
        deal=1,
        action=2,
        amount=amount,
        currency=currency,
        executed_at=ts(at),
        operation_kind=mtbridge_pb2.MT_OPERATION_KIND_DEPOSIT,
        payment=payment_pb2.PaymentDetails(
            method="CARD", instrument_fingerprint=instrument, country_code=country
        ),
    )


def withdrawal(user: uuid.UUID, amount: str, at: datetime) -> mtbridge_pb2.MtBalanceChanged:
    return mtbridge_pb2.MtBalanceChanged(
        user_id=str(user),
        server="mt5-test",
        login=1001,
        deal=2,
        action=2,
        amount=f"-{amount}",
        currency="USD",
        executed_at=ts(at),
        operation_kind=mtbridge_pb2.MT_OPERATION_KIND_WITHDRAWAL,
    )


def login(
    user: uuid.UUID, ip: str, at: datetime, device: str = "dev-1"
) -> identity_pb2.LoginSucceeded:
    return identity_pb2.LoginSucceeded(
        user_id=str(user),
        session_id=str(uuid.uuid4()),
        ip_address=ip,
        user_agent="test",
        device_id=device,
        aal=2,
        occurred_at=ts(at),
    )


def kyc_approved(user: uuid.UUID, country: str, at: datetime) -> kyc_pb2.KycApplicationApproved:
    return kyc_pb2.KycApplicationApproved(
        application_id=str(uuid.uuid4()),
        user_id=str(user),
        level=1,
        currency="USD",
        approved_at=ts(at),
        country_code=country,
        risk_rating=kyc_pb2.KYC_RISK_RATING_LOW,
    )


def structuring(user: uuid.UUID, start: datetime = T0) -> list[mtbridge_pb2.MtBalanceChanged]:
    return [
        deposit(user, amount, start + timedelta(hours=i))
        for i, amount in enumerate(("9500", "9800", "9100"))
    ]

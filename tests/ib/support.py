"""The ib service in-process on real PostgreSQL, NATS and sockets, and helpers to feed
it the events other services publish."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from pipworks.events.v1 import identity_pb2, mtbridge_pb2
from pipworks.ib.v1 import ib_service_pb2 as pb
from pipworks.ib.v1 import ib_service_pb2_grpc as pb_grpc
from pipworks_ib.handlers.context import Deps
from pipworks_ib.main import DEFINITION, assemble, build_deps
from pipworks_ib.settings import IbSettings
from pipworks_platform.runtime import Components, Infrastructure
from tests.harness import InProcessService, RunningService, in_process
from tests.helpers import eventually, publish
from tests.tokens import TokenAuthority

SERVER = "mt5-live"
DEAL_NAMESPACE = uuid.UUID("6f1c1e0a-8d55-4c9f-b3a5-0f6f9c2d7e10")


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


@dataclass
class Ib(RunningService):
    service: InProcessService
    deps: Deps
    stub: pb_grpc.IbServiceStub
    authority: TokenAuthority

    def admin(self, *, aal: int = 2) -> tuple[tuple[str, str], ...]:
        return self.authority.metadata(subject=str(uuid.uuid4()), roles=("admin",), aal=aal)

    def as_ib(self, user_id: uuid.UUID | str) -> tuple[tuple[str, str], ...]:
        return self.authority.metadata(subject=str(user_id), roles=("ib",))

    async def publish(self, message: Message, event_id: str | None = None) -> None:
        await publish(self.nats.jetstream(), message, event_id or str(uuid.uuid4()))

    async def ledger_count(self) -> int:
        return int(await self.scalar("SELECT count(*) FROM ledger"))

    async def wait_inbox(self, consumer: str, count: int, timeout: float = 30.0) -> None:
        await eventually(
            lambda: self.scalar("SELECT count(*) FROM inbox_events WHERE consumer = $1", consumer),
            until=lambda n: n >= count,
            timeout=timeout,
        )

    # -- setup through the API -------------------------------------------------------------

    async def create_plan(self, plan_id: str, terms: pb.PlanTerms) -> pb.PlanVersion:
        made = await self.stub.CreatePlan(
            pb.CreatePlanRequest(plan_id=plan_id, name=plan_id, terms=terms),
            metadata=self.admin(),
        )
        return made.version

    async def create_partner(
        self, parent: str = "", plan_id: str = "", user_id: uuid.UUID | None = None
    ) -> pb.Partner:
        made = await self.stub.CreatePartner(
            pb.CreatePartnerRequest(
                user_id=str(user_id or uuid.uuid4()), parent_partner_id=parent, plan_id=plan_id
            ),
            metadata=self.admin(),
        )
        return made.partner

    async def refer(self, partner: pb.Partner, client: uuid.UUID) -> str:
        """A referral link of the partner, and the client registering with it."""
        link = await self.stub.CreateReferralLink(
            pb.CreateReferralLinkRequest(campaign="spring"), metadata=self.as_ib(partner.user_id)
        )
        await self.publish(
            identity_pb2.UserRegistered(
                user_id=str(client), country_code="CY", referral_code=link.link.code
            )
        )
        return link.link.code


def deal_event(
    client: uuid.UUID,
    ticket: int,
    position: int,
    entry: int,
    at: datetime,
    *,
    symbol: str = "EURUSD",
    volume: str = "1.00",
    commission: str = "-3.50",
    profit: str = "0",
    currency: str = "USD",
    login: int = 700001,
) -> mtbridge_pb2.MtDealExecuted:
    return mtbridge_pb2.MtDealExecuted(
        user_id=str(client),
        server=SERVER,
        login=login,
        deal=ticket,
        position_id=position,
        action=0,
        entry=entry,
        symbol=symbol,
        volume_lots=volume,
        price="1.10000",
        profit=profit,
        commission=commission,
        swap="0",
        executed_at=ts(at),
        currency=currency,
    )


def deal_event_id(message: mtbridge_pb2.MtDealExecuted) -> str:
    """The bridge's deterministic event id for a deal."""
    return str(uuid.uuid5(DEAL_NAMESPACE, f"{message.server}:{message.deal}"))


@contextlib.asynccontextmanager
async def running_ib(
    database_url: str,
    nats_url: str,
    authority: TokenAuthority,
    *,
    consumers: bool = True,
    clock: Callable[[], datetime] | None = None,
    **overrides: Any,
) -> AsyncIterator[Ib]:
    settings = IbSettings(database_url=database_url, nats_url=nats_url, metrics_port=0, **overrides)
    built: list[Deps] = []

    def build(infra: Infrastructure) -> Components:
        deps = build_deps(infra)
        if clock is not None:
            deps.clock = clock
        built.append(deps)
        return assemble(deps, infra)

    async with in_process(
        DEFINITION,
        settings,
        build=build,
        jwks_source=authority.jwks_source(),
        consumers=consumers,
    ) as service:
        yield Ib(service, built[0], pb_grpc.IbServiceStub(service.channel), authority)


def standard_terms(**overrides: Any) -> pb.PlanTerms:
    """``tests.ib.plans_fixture.ten_level_terms`` on the wire."""
    from pipworks_ib.validation import terms_message
    from tests.ib.plans_fixture import ten_level_terms

    message = terms_message(ten_level_terms())
    for key, value in overrides.items():
        setattr(message, key, value)
    return message


__all__ = ["Decimal", "Ib", "deal_event", "running_ib", "standard_terms"]

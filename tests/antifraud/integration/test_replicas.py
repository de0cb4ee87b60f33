"""Two replicas on one database: a stale cached state is never written over a newer one."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from pipworks_antifraud.adapters.store import StaleState
from pipworks_antifraud.handlers.stream import Detector, StateCache
from pipworks_platform.consumer import InboundEvent
from tests.antifraud.support import T0, deposit, running_antifraud, structuring
from tests.tokens import TokenAuthority


def inbound(message: object) -> InboundEvent:
    return InboundEvent(uuid.uuid4(), "pipworks.mtbridge.v1.balance.changed", message, None, 1)  # type: ignore[arg-type]


async def test_a_stale_cache_is_refused_and_the_retry_sees_every_event(
    database_url: str, nats_url: str, token_authority: TokenAuthority
) -> None:
    user = uuid.uuid4()
    first, second, third = structuring(user)
    async with running_antifraud(database_url, nats_url, token_authority, consumers=False) as af:
        uow = af.deps.staff.uow
        one = af.deps.detector
        two = Detector(one.rulebook, one.geo, StateCache(100))  # another replica's memory
        async with uow() as unit:
            await one.handle_batch([inbound(first)], unit)
        async with uow() as unit:
            await two.handle_batch([inbound(second)], unit)
        with pytest.raises(StaleState):  # replica one still holds the state before `second`
            async with uow() as unit:
                await one.handle_batch([inbound(third)], unit)
        assert one.cache.get(str(user)) is None  # evicted, so the retry reads the database
        async with uow() as unit:
            await one.handle_batch([inbound(third)], unit)
        rules = await af.sql("SELECT rule_id FROM alerts WHERE user_id = $1", user)
        assert [r["rule_id"] for r in rules] == ["structuring"]  # all three deposits counted
        late = inbound(deposit(user, "10", T0 + timedelta(hours=4)))
        with pytest.raises(StaleState):  # and now replica two is behind: same for one event
            async with uow() as unit:
                await two.handle(late, unit)
        async with uow() as unit:
            await two.handle(late, unit)
        assert await af.evaluated() == 4

"""The batching bridge consumer: one trace per deal, and a poison message parked alone."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pipworks.events.v1 import ib_pb2
from pipworks_platform.events import nats_headers, subject_of
from pipworks_platform.streams import deadletter_stream, deadletter_subject
from tests.helpers import eventually
from tests.ib.integration.test_commissions import chain_of
from tests.ib.support import Ib, deal_event, deal_event_id, standard_terms

IN, OUT = 0, 1


async def publish_traced(ib: Ib, message, event_id: str, trace_id: str) -> None:  # type: ignore[no-untyped-def]
    headers = nats_headers(
        event_id=event_id,
        event_type=message.DESCRIPTOR.full_name,
        occurred_at=datetime.now(UTC),
        extra={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
    )
    await ib.nats.jetstream().publish(
        subject_of(message), message.SerializeToString(), headers=headers
    )


async def test_each_deal_commission_event_continues_the_deal_trace(
    ib: Ib, span_exporter: InMemorySpanExporter
) -> None:
    await ib.create_plan("std", standard_terms())
    (partner,) = await chain_of(ib, 1, "std")
    client = uuid.uuid4()
    await ib.refer(partner, client)
    await ib.wait_inbox("ib-identity", 1)
    start = datetime.now(UTC) + timedelta(minutes=1)
    traces = {}
    for position in range(1, 4):
        opened = deal_event(client, position * 10, position, IN, start)
        closed = deal_event(client, position * 10 + 1, position, OUT, start + timedelta(minutes=5))
        trace_id = f"{position:032x}"
        traces[position * 10 + 1] = trace_id
        await publish_traced(ib, opened, deal_event_id(opened), trace_id)
        await publish_traced(ib, closed, deal_event_id(closed), trace_id)
    await ib.wait_inbox("ib-mtbridge", 6)
    rows = await ib.sql(
        "SELECT payload, headers FROM outbox_events"
        " WHERE event_type = 'pipworks.events.v1.IbCommissionAccrued'"
    )
    seen = {}
    for row in rows:
        event = ib_pb2.IbCommissionAccrued.FromString(row["payload"])
        headers = row["headers"] if isinstance(row["headers"], dict) else json.loads(row["headers"])
        seen[event.accruals[0].deal] = headers["traceparent"].split("-")[1]
    assert seen == traces


async def test_a_poison_deal_is_dead_lettered_and_the_rest_applied(ib: Ib) -> None:
    await ib.create_plan("std", standard_terms())
    (partner,) = await chain_of(ib, 1, "std")
    client = uuid.uuid4()
    await ib.refer(partner, client)
    await ib.wait_inbox("ib-identity", 1)
    start = datetime.now(UTC) + timedelta(minutes=1)
    good_open = deal_event(client, 10, 1, IN, start)
    poison = deal_event(client, 15, 2, OUT, start)
    poison.user_id = "not-a-user"
    good_close = deal_event(client, 11, 1, OUT, start + timedelta(minutes=5))
    for event in (good_open, poison, good_close):
        await ib.publish(event, deal_event_id(event))
    await ib.wait_inbox("ib-mtbridge", 2)
    js = ib.nats.jetstream()

    async def parked() -> int:
        info = await js.stream_info(
            deadletter_stream().name, subjects_filter=deadletter_subject("ib", "ib-mtbridge")
        )
        return (info.state.subjects or {}).get(deadletter_subject("ib", "ib-mtbridge"), 0)

    assert await eventually(parked, until=lambda n: n == 1) == 1
    assert {r["deal"] for r in await ib.sql("SELECT deal FROM ledger")} == {11}

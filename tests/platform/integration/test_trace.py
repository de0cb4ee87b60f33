"""One trace follows a call from the gRPC server through the outbox and NATS into the
consumer that applies the event."""

from __future__ import annotations

import asyncio

import asyncpg
from opentelemetry.trace import SpanKind

from pipworks_platform.consumer import EventConsumer, Subscription
from pipworks_platform.db import UnitOfWorkFactory, create_engine, libpq_dsn, session_factory
from pipworks_platform.grpc_client import insecure_channel
from pipworks_platform.outbox import OutboxRelay
from pipworks_platform.server import ApiService, GrpcServer
from pipworks_platform.streams import ensure_stream, service_stream
from tests.helpers import eventually


async def test_call_event_and_consumer_share_one_trace(sample_db, nats_client, span_exporter):
    from pipworks.testing.v1 import notes_pb2, notes_pb2_grpc
    from tests.platform.sample.service import CONSUMER, SERVICE, NotesApi, recorder

    span_exporter.clear()
    engine = create_engine(sample_db, application_name="test")
    uow = UnitOfWorkFactory(session_factory(engine), service=SERVICE)
    server = GrpcServer(
        service=SERVICE,
        address="127.0.0.1:0",
        api_services=[ApiService.of(notes_pb2, notes_pb2_grpc, "NotesService", NotesApi(uow))],
    )
    port = await server.start()
    await ensure_stream(nats_client.jetstream(), service_stream(SERVICE))
    relay = OutboxRelay(service=SERVICE, database_url=sample_db, nats=nats_client)
    consumer = EventConsumer(
        service=SERVICE,
        nats=nats_client,
        unit_of_work=uow,
        subscription=Subscription(
            durable=CONSUMER,
            subjects=["pipworks.identity.v1.user.registered"],
            handler=recorder(CONSUMER),
        ),
        fetch_timeout=0.3,
    )
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(consumer.run())]
    try:
        async with insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = await notes_pb2_grpc.NotesServiceStub(channel).AddNote(
                notes_pb2.AddNoteRequest(text="traced")
            )

        async def applied_trace() -> str | None:
            conn = await asyncpg.connect(libpq_dsn(sample_db))
            try:
                return await conn.fetchval(
                    "SELECT trace_id FROM applied_events WHERE user_id = $1", reply.note_id
                )
            finally:
                await conn.close()

        consumer_trace = await eventually(applied_trace)
    finally:
        relay.stop()
        consumer.stop()
        await asyncio.gather(*tasks)
        await server.stop(0)
        await engine.dispose()

    spans = span_exporter.get_finished_spans()
    client = [s for s in spans if s.kind == SpanKind.CLIENT and "AddNote" in s.name]
    served = [s for s in spans if s.kind == SpanKind.SERVER and "AddNote" in s.name]
    published = [s for s in spans if s.kind == SpanKind.PRODUCER]
    processed = [s for s in spans if s.kind == SpanKind.CONSUMER]
    assert client
    assert served
    assert published
    assert processed
    trace_id = format(served[0].context.trace_id, "032x")
    assert format(client[0].context.trace_id, "032x") == trace_id
    assert {format(s.context.trace_id, "032x") for s in published + processed} == {trace_id}
    assert consumer_trace == trace_id
    # The consumer span is a child of the publish span, which is a child of the server span.
    assert processed[0].parent.span_id == published[0].context.span_id
    assert published[0].parent.span_id == served[0].context.span_id

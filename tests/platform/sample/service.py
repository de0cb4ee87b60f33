"""A small service on the shared runtime, used by the platform tests in-process and as
a subprocess (``python -m tests.platform.sample.service``).

It publishes as "identity" so that its event, the catalogue's real UserRegistered,
lands in the identity stream; its NotesService is compiled from a test-only proto.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path

import sqlalchemy as sa

from pipworks.events.v1 import identity_pb2
from pipworks_platform.consumer import InboundEvent, Subscription
from pipworks_platform.db.unit_of_work import UnitOfWork, UnitOfWorkFactory
from pipworks_platform.errors import InvalidArgument, NotFound
from pipworks_platform.runtime import Components, Infrastructure, ServiceDefinition, run_service
from pipworks_platform.server import ApiService
from pipworks_platform.tracing import current_trace_id
from tests.protos import ensure_importable

ensure_importable(Path(os.environ["PIPWORKS_TEST_PROTOS"]))

from pipworks.testing.v1 import notes_pb2, notes_pb2_grpc  # noqa: E402

SERVICE = "identity"
MIGRATIONS = Path(__file__).parent / "migrations"
CONSUMER = "sample-user-registered"

metadata = sa.MetaData()
notes = sa.Table(
    "notes", metadata, sa.Column("id", sa.Uuid, primary_key=True), sa.Column("text", sa.Text)
)
applied_events = sa.Table(
    "applied_events",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("consumer", sa.Text),
    sa.Column("event_id", sa.Uuid),
    sa.Column("user_id", sa.Text),
    sa.Column("trace_id", sa.Text),
)


class NotesApi(notes_pb2_grpc.NotesServiceServicer):
    def __init__(self, unit_of_work: UnitOfWorkFactory) -> None:
        self._uow = unit_of_work

    async def AddNote(self, request, context):
        if not request.text:
            raise InvalidArgument.for_field("text", "must not be empty")
        note_id = uuid.uuid4()
        async with self._uow() as uow:
            await uow.session.execute(sa.insert(notes).values(id=note_id, text=request.text))
            uow.emit(identity_pb2.UserRegistered(user_id=str(note_id), country_code="GB"))
            await uow.commit()
        return notes_pb2.AddNoteResponse(note_id=str(note_id))

    async def SlowEcho(self, request, context):
        await asyncio.sleep(request.seconds)
        return notes_pb2.SlowEchoResponse(text=request.text)

    async def AdminOnly(self, request, context):
        return notes_pb2.FailResponse()

    async def Unexposed(self, request, context):
        return notes_pb2.FailResponse()

    async def Fail(self, request, context):
        if request.kind == "not_found":
            raise NotFound("note", "n-1")
        if request.kind == "invalid":
            raise InvalidArgument.for_field("kind", "must be a known kind")
        raise RuntimeError("database password is hunter2")


def recorder(consumer: str):
    """A handler that records each applied event with the trace it ran in."""

    async def record(event: InboundEvent, uow: UnitOfWork) -> None:
        await uow.session.execute(
            sa.insert(applied_events).values(
                consumer=consumer,
                event_id=event.event_id,
                user_id=event.message.user_id,
                trace_id=current_trace_id(),
            )
        )

    return record


def build(infra: Infrastructure) -> Components:
    return Components(
        api=[
            ApiService.of(notes_pb2, notes_pb2_grpc, "NotesService", NotesApi(infra.unit_of_work))
        ],
        subscriptions=[
            Subscription(
                durable=CONSUMER,
                subjects=["pipworks.identity.v1.user.registered"],
                handler=recorder(CONSUMER),
                backoff=(0.2, 0.5),
                ack_wait=2.0,
            )
        ],
    )


def jwks_from_environment(infra: Infrastructure):
    """Keys of the tests' token authority, handed over in PIPWORKS_TEST_JWKS."""
    keys = json.loads(os.environ.get("PIPWORKS_TEST_JWKS", "[]"))

    async def fetch():
        return keys

    return fetch


DEFINITION = ServiceDefinition(
    name=SERVICE,
    version="0.0.0-test",
    build=build,
    migrations=MIGRATIONS,
    jwks_source=jwks_from_environment,
)

if __name__ == "__main__":
    run_service(DEFINITION)

"""Event envelope: proto event messages, their subjects, and NATS headers.

An event's payload is the serialized ``pipworks.events.v1`` message; its subject comes
from the message's ``(pipworks.events.v1.event).subject`` option, so the catalogue lives
in the protos. The envelope travels in NATS headers.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from google.protobuf import symbol_database
from google.protobuf.message import DecodeError, Message

from pipworks.events.v1 import options_pb2
from pipworks_platform.protos import load_proto_package
from pipworks_platform.tracing import inject_trace_headers

HEADER_MSG_ID = "Nats-Msg-Id"  # JetStream's de-duplication key; the event id by default
HEADER_EVENT_ID = "Pipworks-Event-Id"  # what consumers de-duplicate on (the inbox key)
HEADER_EVENT_TYPE = "Pipworks-Event-Type"
HEADER_OCCURRED_AT = "Pipworks-Occurred-At"
EVENTS_PACKAGE = "pipworks.events.v1"


class UnknownEventError(LookupError):
    """The event type is not a published message of pipworks.events.v1."""


def subject_of(message_type: type[Message] | Message) -> str:
    """The NATS subject a ``pipworks.events.v1`` message is published on."""
    descriptor = message_type.DESCRIPTOR
    options = descriptor.GetOptions()
    if (
        not options.HasExtension(options_pb2.event)
        or not options.Extensions[options_pb2.event].subject
    ):
        raise UnknownEventError(f"{descriptor.full_name} has no (pipworks.events.v1.event) subject")
    return options.Extensions[options_pb2.event].subject


@dataclass(frozen=True)
class OutgoingEvent:
    """An event on its way into the outbox."""

    event_id: uuid.UUID
    subject: str
    event_type: str
    payload: bytes
    occurred_at: datetime
    headers: dict[str, str] = field(default_factory=dict)

    def as_row(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "subject": self.subject,
            "event_type": self.event_type,
            "payload": self.payload,
            "occurred_at": self.occurred_at,
            "headers": self.headers,
        }


def build_outgoing(event: Message, *, event_id: str | None = None) -> OutgoingEvent:
    """Envelope an event, capturing the current trace context for the consumer side."""
    return OutgoingEvent(
        event_id=uuid.UUID(event_id) if event_id else uuid.uuid4(),
        subject=subject_of(event),
        event_type=event.DESCRIPTOR.full_name,
        payload=event.SerializeToString(deterministic=True),
        occurred_at=datetime.now(UTC),
        headers=inject_trace_headers({}),
    )


def nats_headers(
    *, event_id: str, event_type: str, occurred_at: datetime, extra: dict[str, str]
) -> dict[str, str]:
    headers = dict(extra)
    headers[HEADER_MSG_ID] = event_id
    headers[HEADER_EVENT_ID] = event_id
    headers[HEADER_EVENT_TYPE] = event_type
    headers[HEADER_OCCURRED_AT] = occurred_at.astimezone(UTC).isoformat()
    return headers


def event_class(event_type: str) -> type[Message]:
    if not event_type.startswith(EVENTS_PACKAGE + "."):
        raise UnknownEventError(f"{event_type!r} is not in {EVENTS_PACKAGE}")
    load_proto_package(EVENTS_PACKAGE)
    try:
        return symbol_database.Default().GetSymbol(event_type)
    except KeyError:
        raise UnknownEventError(f"unknown event type {event_type!r}") from None


def decode_event(event_type: str, payload: bytes) -> Message:
    """Parse a payload as its declared type; raise UnknownEventError or DecodeError."""
    message = event_class(event_type)()
    message.ParseFromString(payload)
    return message


__all__ = [
    "HEADER_EVENT_ID",
    "HEADER_EVENT_TYPE",
    "HEADER_MSG_ID",
    "HEADER_OCCURRED_AT",
    "DecodeError",
    "OutgoingEvent",
    "UnknownEventError",
    "build_outgoing",
    "decode_event",
    "event_class",
    "nats_headers",
    "subject_of",
]

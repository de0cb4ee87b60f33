"""JetStream streams: one per producing service, plus the dead-letter stream.

Stream definitions are code, derived from the service name, so producer and consumer
sides agree without sharing configuration files.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

DEADLETTER_STREAM = "PIPWORKS_DEADLETTER"
DEADLETTER_SUBJECT_PREFIX = "pipworks.deadletter"
DUPLICATE_WINDOW_SECONDS = 10 * 60
DAY = 24 * 3600


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    replicas: int = 1
    max_age_seconds: float = 14 * DAY

    def config(self) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            subjects=list(self.subjects),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            num_replicas=self.replicas,
            max_age=self.max_age_seconds,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
        )


def service_stream(service: str, *, replicas: int = 1) -> StreamSpec:
    """``PIPWORKS_<SERVICE>`` holding ``pipworks.<service>.>``."""
    return StreamSpec(
        name=f"PIPWORKS_{service.upper()}",
        subjects=(f"pipworks.{service}.>",),
        replicas=replicas,
    )


def deadletter_stream(*, replicas: int = 1) -> StreamSpec:
    return StreamSpec(
        name=DEADLETTER_STREAM,
        subjects=(f"{DEADLETTER_SUBJECT_PREFIX}.>",),
        replicas=replicas,
        max_age_seconds=90 * DAY,
    )


def deadletter_subject(service: str, durable: str) -> str:
    return f"{DEADLETTER_SUBJECT_PREFIX}.{service}.{durable}"


def producer_of(subject: str) -> str:
    """``pipworks.identity.v1.user.registered`` → ``identity``."""
    parts = subject.split(".")
    if len(parts) < 3 or parts[0] != "pipworks":
        raise ValueError(f"not a Pipworks event subject: {subject!r}")
    return parts[1]


async def ensure_stream(js: JetStreamContext, spec: StreamSpec, *, update: bool = True) -> None:
    """Create the stream, or bring an existing one to ``spec`` when ``update`` is set.

    Consumers call this with ``update=False`` for streams they read but do not own, so
    they can start before the producer without fighting over its configuration.
    """
    try:
        await js.stream_info(spec.name)
    except NotFoundError:
        await js.add_stream(spec.config())
        return
    if update:
        await js.update_stream(spec.config())

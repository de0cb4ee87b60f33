"""Read-only probes of a running suite's plumbing: JetStream consumers and the dead-letter
stream, every service's outbox, and grpc.health.v1 of every service."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import grpc
import nats
from nats.js.errors import NotFoundError

from pipworks_devstack.local_suite import LocalSuite
from pipworks_platform.consumer import HEADER_DL_CONSUMER, HEADER_DL_REASON
from pipworks_platform.streams import DEADLETTER_STREAM
from tests.harness import sql
from tests.helpers import health_status


@dataclass(frozen=True)
class ConsumerState:
    stream: str
    durable: str
    num_pending: int
    num_ack_pending: int
    num_redelivered: int

    @property
    def idle(self) -> bool:
        return self.num_pending == 0 and self.num_ack_pending == 0


async def consumers(nats_url: str) -> list[ConsumerState]:
    """Every durable consumer of every stream."""
    client = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        js = client.jetstream()
        found: list[ConsumerState] = []
        for stream in await js.streams_info():
            name = stream.config.name or ""
            for info in await js.consumers_info(name):
                found.append(
                    ConsumerState(
                        stream=name,
                        durable=info.name,
                        num_pending=info.num_pending or 0,
                        num_ack_pending=info.num_ack_pending or 0,
                        num_redelivered=info.num_redelivered or 0,
                    )
                )
        return found
    finally:
        await client.close()


async def dead_letters(nats_url: str) -> list[str]:
    """``consumer: reason`` of every message parked on the dead-letter stream."""
    client = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        js = client.jetstream()
        try:
            state = (await js.stream_info(DEADLETTER_STREAM)).state
        except NotFoundError:
            return []
        parked: list[str] = []
        if state.messages:
            for seq in range(state.first_seq, state.last_seq + 1):
                with contextlib.suppress(NotFoundError):
                    msg = await js.get_msg(DEADLETTER_STREAM, seq)
                    headers = msg.headers or {}
                    parked.append(
                        f"{headers.get(HEADER_DL_CONSUMER)}: {headers.get(HEADER_DL_REASON)}"
                    )
        return parked
    finally:
        await client.close()


async def unpublished_outbox(suite: LocalSuite) -> dict[str, int]:
    """Unpublished outbox rows per service that has a database."""
    backlog: dict[str, int] = {}
    for service in suite.config.services:
        if service.database:
            rows = await sql(
                suite.database_url(service.name),
                "SELECT count(*) FROM outbox_events WHERE published_at IS NULL",
            )
            backlog[service.name] = rows[0][0]
    return backlog


def health(suite: LocalSuite) -> dict[str, str]:
    """grpc.health.v1 status of every gRPC service (the overall server status)."""
    statuses: dict[str, str] = {}
    for service in suite.config.services:
        if service.is_grpc:
            try:
                statuses[service.name] = health_status(service.grpc_port, timeout=5)
            except grpc.RpcError as exc:
                statuses[service.name] = f"unreachable: {exc.code().name}"
    return statuses

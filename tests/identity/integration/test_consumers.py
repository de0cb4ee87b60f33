"""Events from kyc and antifraud, delivered through JetStream, applied once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError

from pipworks.events.v1 import antifraud_pb2, identity_pb2, kyc_pb2
from pipworks.identity.v1 import identity_service_pb2 as pb
from pipworks_platform.grpc_errors import error_details
from tests.helpers import eventually, publish
from tests.identity.support import PASSWORD, Identity, login_tokens, register, running_identity


@pytest.fixture
async def consuming(database_url: str, nats_url: str) -> AsyncIterator[Identity]:
    async with running_identity(database_url, nats_url, consumers=True) as running:
        yield running


async def inbox_count(identity: Identity) -> int:
    return await identity.scalar("SELECT count(*) FROM inbox_events")


async def test_kyc_approval_and_level_changes_set_the_users_level(
    consuming: Identity, nats_client: NATS
) -> None:
    js = nats_client.jetstream()
    user = (await register(consuming.stub, "kyc-level@example.com")).user_id
    approved = kyc_pb2.KycApplicationApproved(application_id="a-1", user_id=user, level=2)
    await publish(js, approved, str(uuid.uuid4()))
    await publish(js, approved, str(uuid.uuid4()))  # the same fact again: still 2
    await eventually(lambda: inbox_count(consuming), until=lambda n: n == 2)
    level = "SELECT kyc_level FROM users WHERE id = $1"
    assert await consuming.scalar(level, uuid.UUID(user)) == 2

    lowered = kyc_pb2.KycLevelChanged(
        user_id=user, previous_level=2, level=1, reason="DOCUMENT_EXPIRED"
    )
    await publish(js, lowered, str(uuid.uuid4()))
    await eventually(lambda: consuming.scalar(level, uuid.UUID(user)), until=lambda n: n == 1)


async def test_a_login_restriction_ends_sessions_and_refuses_logins_until_lifted(
    consuming: Identity, nats_client: NATS
) -> None:
    js = nats_client.jetstream()
    email = "restricted@example.com"
    user = (await register(consuming.stub, email)).user_id
    await login_tokens(consuming.stub, email)
    live = "SELECT count(*) FROM sessions WHERE user_id = $1 AND revoked_at IS NULL"
    assert await consuming.scalar(live, uuid.UUID(user)) == 1

    trading_only = antifraud_pb2.AntifraudClientRestricted(
        user_id=user, trading=True, restriction_id="r-0", reason="VELOCITY"
    )
    restricted = antifraud_pb2.AntifraudClientRestricted(
        user_id=user, login=True, restriction_id="r-1", case_id="c-1", reason="ATO"
    )
    await publish(js, trading_only, str(uuid.uuid4()))
    await publish(js, restricted, str(uuid.uuid4()))
    await publish(js, restricted, str(uuid.uuid4()))  # redelivered under another id
    await eventually(lambda: inbox_count(consuming), until=lambda n: n == 3)
    assert await consuming.scalar(live, uuid.UUID(user)) == 0
    rows = await consuming.sql("SELECT restriction_id FROM login_restrictions")
    assert [r["restriction_id"] for r in rows] == ["r-1"]

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await consuming.stub.Login(pb.LoginRequest(email=email, password=PASSWORD))
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert error_details(refused.value).reason == "ACCOUNT_RESTRICTED"
    # A wrong password learns nothing about the restriction.
    with pytest.raises(grpc.aio.AioRpcError) as wrong:
        await consuming.stub.Login(pb.LoginRequest(email=email, password="Wrong-pass-123"))
    assert wrong.value.code() is grpc.StatusCode.UNAUTHENTICATED
    failures = await consuming.events("LoginFailed")
    assert identity_pb2.LOGIN_FAILURE_REASON_RESTRICTED in {f.reason for f in failures}

    lifted = antifraud_pb2.AntifraudClientUnrestricted(
        user_id=user, login=True, restriction_id="r-1", reason="FALSE_POSITIVE"
    )
    await publish(js, lifted, str(uuid.uuid4()))
    await eventually(lambda: inbox_count(consuming), until=lambda n: n == 4)
    assert (await login_tokens(consuming.stub, email)).access_token


async def test_an_event_for_an_unknown_user_is_dead_lettered_not_retried_forever(
    consuming: Identity, nats_client: NATS
) -> None:
    js = nats_client.jetstream()
    stranger = kyc_pb2.KycApplicationApproved(user_id=str(uuid.uuid4()), level=2)
    await publish(js, stranger, str(uuid.uuid4()))

    async def parked_message() -> Any:
        try:
            return await js.get_last_msg(
                "PIPWORKS_DEADLETTER", "pipworks.deadletter.identity.identity-kyc-levels"
            )
        except NotFoundError:  # the stream, or the message, is not there yet
            return None

    parked = await eventually(parked_message, until=lambda m: m is not None)
    assert "unknown user" in (parked.headers or {}).get("Pipworks-Dead-Letter-Reason", "")


async def test_logins_stay_refused_while_any_login_restriction_remains(
    consuming: Identity, nats_client: NATS
) -> None:
    js = nats_client.jetstream()
    email = "twice-restricted@example.com"
    user = (await register(consuming.stub, email)).user_id
    for restriction_id in ("r-a", "r-b"):
        await publish(
            js,
            antifraud_pb2.AntifraudClientRestricted(
                user_id=user, login=True, restriction_id=restriction_id, reason="ATO"
            ),
            str(uuid.uuid4()),
        )
    # r-a goes while r-b still blocks logins: anti-fraud says so with login=false.
    await publish(
        js,
        antifraud_pb2.AntifraudClientUnrestricted(user_id=user, restriction_id="r-a"),
        str(uuid.uuid4()),
    )
    await eventually(lambda: inbox_count(consuming), until=lambda n: n == 3)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await consuming.stub.Login(pb.LoginRequest(email=email, password=PASSWORD))
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED

    await publish(
        js,
        antifraud_pb2.AntifraudClientUnrestricted(user_id=user, login=True, restriction_id="r-b"),
        str(uuid.uuid4()),
    )
    await eventually(lambda: inbox_count(consuming), until=lambda n: n == 4)
    assert (await login_tokens(consuming.stub, email)).access_token

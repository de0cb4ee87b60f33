"""Brute force: the account locks after five failures, however many arrive at once, the
lock grows with repeats, and each client address is throttled on its own."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import grpc
import pytest
from prometheus_client import REGISTRY

from pipworks.events.v1 import identity_pb2
from pipworks.identity.v1 import identity_service_pb2 as pb
from pipworks_platform.grpc_errors import ErrorDetails, error_details
from tests.identity.support import PASSWORD, login_tokens, register, running_identity

EMAIL = "target@example.com"
Reason = identity_pb2.LoginFailureReason


async def _login(stub, password: str, *, address: str = "198.51.100.7") -> ErrorDetails | None:
    try:
        await stub.Login(
            pb.LoginRequest(email=EMAIL, password=password),
            metadata=(("x-forwarded-for", address),),
        )
    except grpc.aio.AioRpcError as exc:
        return error_details(exc)
    return None


def _verifications() -> float:
    """argon2 verifications so far, from the service's own Prometheus counter."""
    return sum(
        REGISTRY.get_sample_value(
            "pipworks_identity_password_verifications_total", {"outcome": outcome}
        )
        or 0.0
        for outcome in ("match", "mismatch")
    )


async def test_five_failures_lock_the_account_and_the_lock_grows(database_url, nats_url):
    async with running_identity(
        database_url, nats_url, identity_lockout_durations_seconds="2,4"
    ) as identity:
        await register(identity.stub, EMAIL)
        for _ in range(5):
            failure = await _login(identity.stub, "not-the-password-1")
            assert (failure.code, failure.reason) == (
                grpc.StatusCode.UNAUTHENTICATED,
                "INVALID_CREDENTIALS",
            )
        locked = await _login(identity.stub, PASSWORD)  # even the right password now
        assert (locked.code, locked.reason) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "ACCOUNT_LOCKED",
        )
        assert timedelta(seconds=1) <= locked.retry_after <= timedelta(seconds=2)
        [event] = await identity.events("UserLocked")
        assert event.failed_attempts == 5
        reasons = [e.reason for e in await identity.events("LoginFailed")]
        assert reasons == [Reason.LOGIN_FAILURE_REASON_BAD_CREDENTIALS] * 5 + [
            Reason.LOGIN_FAILURE_REASON_LOCKED
        ]

        await asyncio.sleep(2.1)  # the first lock is over; five more failures lock longer
        for _ in range(5):
            await _login(identity.stub, "not-the-password-1")
        relocked = await _login(identity.stub, PASSWORD)
        assert relocked.reason == "ACCOUNT_LOCKED"
        assert relocked.retry_after > timedelta(seconds=2)

        await asyncio.sleep(relocked.retry_after.total_seconds() + 0.1)
        assert (await login_tokens(identity.stub, EMAIL)).access_token  # success resets
        assert (
            await identity.scalar(
                "SELECT failed_attempts + lockouts FROM users WHERE email = $1", EMAIL
            )
            == 0
        )


async def test_fifty_parallel_guesses_evaluate_at_most_five(identity):
    await register(identity.stub, EMAIL)
    before = _verifications()
    outcomes = await asyncio.gather(
        *(_login(identity.stub, f"guess-number-{n:04d}") for n in range(50))
    )
    evaluated = _verifications() - before
    reasons = [o.reason for o in outcomes]
    assert evaluated == 5  # exactly the threshold: counted before checked, never more
    assert reasons.count("INVALID_CREDENTIALS") == evaluated
    assert reasons.count("ACCOUNT_LOCKED") == 50 - evaluated
    bad_credentials = [
        e
        for e in await identity.events("LoginFailed")
        if e.reason == Reason.LOGIN_FAILURE_REASON_BAD_CREDENTIALS
    ]
    assert len(bad_credentials) == evaluated
    assert len(await identity.events("UserLocked")) == 1


async def test_unknown_email_and_wrong_password_look_the_same(identity):
    await register(identity.stub, EMAIL)

    async def attempt(email: str) -> tuple[ErrorDetails, float]:
        started = time.perf_counter()
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await identity.stub.Login(pb.LoginRequest(email=email, password="wrong-password-1"))
        return error_details(raised.value), time.perf_counter() - started

    before = _verifications()
    unknown, _ = await attempt("nobody@example.com")
    wrong, _ = await attempt(EMAIL)
    assert _verifications() - before == 2  # the unknown email was hashed too (dummy hash)
    assert (unknown.code, unknown.reason, unknown.message) == (
        wrong.code,
        wrong.reason,
        wrong.message,
    )
    unknown_event, wrong_event = await identity.events("LoginFailed")
    assert unknown_event.user_id == ""
    assert wrong_event.user_id != ""
    assert unknown_event.reason == wrong_event.reason == Reason.LOGIN_FAILURE_REASON_BAD_CREDENTIALS


async def test_each_address_is_throttled(database_url, nats_url):
    async with running_identity(
        database_url, nats_url, identity_throttle_burst=3, identity_throttle_per_minute=6
    ) as identity:
        outcomes = [
            await _login(identity.stub, "guess-0000", address="192.0.2.1") for _ in range(4)
        ]
        assert [o.reason for o in outcomes] == ["INVALID_CREDENTIALS"] * 3 + ["TOO_MANY_ATTEMPTS"]
        throttled = outcomes[-1]
        assert throttled.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert throttled.retry_after == timedelta(seconds=10)
        # Another address has its own bucket.
        assert (await _login(identity.stub, "guess-0000", address="192.0.2.2")).reason == (
            "INVALID_CREDENTIALS"
        )
        reasons = [e.reason for e in await identity.events("LoginFailed")]
        assert reasons.count(Reason.LOGIN_FAILURE_REASON_THROTTLED) == 1
        # Other credential checks draw on the same bucket.
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await identity.stub.RequestPasswordReset(
                pb.RequestPasswordResetRequest(email=EMAIL),
                metadata=(("x-forwarded-for", "192.0.2.1"),),
            )
        assert error_details(raised.value).reason == "TOO_MANY_ATTEMPTS"

"""Sessions and refresh-token families: rotation, reuse detection, listing, revocation,
and what password changes and resets do to them."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from pipworks.identity.v1 import identity_service_pb2 as pb
from pipworks_platform.grpc_errors import error_details
from tests.identity.support import PASSWORD, bearer, login_tokens, register

EMAIL = "sessions@example.com"
NEW_PASSWORD = "quartz-meadow-signal-19"


async def _refresh_fails(stub, refresh_token: str) -> str:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.Refresh(pb.RefreshRequest(refresh_token=refresh_token))
    details = error_details(raised.value)
    assert details.code == grpc.StatusCode.UNAUTHENTICATED
    return details.reason


async def test_reusing_a_rotated_refresh_token_revokes_the_family(identity):
    stub = identity.stub
    await register(stub, EMAIL)
    first = await login_tokens(stub, EMAIL)
    other = await login_tokens(stub, EMAIL)  # a second session, in another family
    second = (await stub.Refresh(pb.RefreshRequest(refresh_token=first.refresh_token))).tokens
    third = (await stub.Refresh(pb.RefreshRequest(refresh_token=second.refresh_token))).tokens

    # A stolen copy of the first token shows up: the whole family goes.
    assert await _refresh_fails(stub, first.refresh_token) == "REFRESH_TOKEN_REUSED"
    assert await _refresh_fails(stub, third.refresh_token) == "REFRESH_TOKEN_INVALID"
    revoked = await identity.sql(
        "SELECT revoked_reason FROM sessions WHERE id = $1::uuid", first.session_id
    )
    assert revoked[0]["revoked_reason"] == "refresh_token_reuse"
    # The other session is untouched.
    assert (await stub.Refresh(pb.RefreshRequest(refresh_token=other.refresh_token))).tokens


async def test_concurrent_refreshes_of_one_token_let_only_one_through(identity):
    stub = identity.stub
    await register(stub, EMAIL)
    tokens = await login_tokens(stub, EMAIL)
    outcomes = await asyncio.gather(
        *(stub.Refresh(pb.RefreshRequest(refresh_token=tokens.refresh_token)) for _ in range(5)),
        return_exceptions=True,
    )
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1
    # The losers are a reuse, so the family is revoked: the winner's token is dead too.
    winner = next(o for o in outcomes if not isinstance(o, Exception))
    assert await _refresh_fails(stub, winner.tokens.refresh_token) == "REFRESH_TOKEN_INVALID"


async def test_list_page_and_revoke_own_sessions(identity):
    stub = identity.stub
    await register(stub, EMAIL)
    logins = [await login_tokens(stub, EMAIL) for _ in range(5)]
    auth = bearer(logins[-1].access_token)

    seen, token = [], ""
    while True:
        page = await stub.ListSessions(
            pb.ListSessionsRequest(page={"page_size": 2, "page_token": token}), metadata=auth
        )
        seen += page.sessions
        token = page.page.next_page_token
        if not token:
            break
    assert [s.session_id for s in seen] == [t.session_id for t in reversed(logins)]
    assert [s.current for s in seen] == [True, False, False, False, False]
    assert all(s.ip_address == "127.0.0.1" for s in seen)

    await stub.RevokeSession(
        pb.RevokeSessionRequest(session_id=logins[0].session_id), metadata=auth
    )
    assert await _refresh_fails(stub, logins[0].refresh_token) == "REFRESH_TOKEN_INVALID"
    listed = await stub.ListSessions(pb.ListSessionsRequest(), metadata=auth)
    assert len(listed.sessions) == 4

    # Someone else's session is "not found", whether it exists or not.
    await register(stub, "other@example.com")
    foreign = await login_tokens(stub, "other@example.com")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.RevokeSession(
            pb.RevokeSessionRequest(session_id=foreign.session_id), metadata=auth
        )
    assert error_details(raised.value).code == grpc.StatusCode.NOT_FOUND
    assert (await stub.Refresh(pb.RefreshRequest(refresh_token=foreign.refresh_token))).tokens


async def test_changing_the_password_ends_the_other_sessions(identity):
    stub = identity.stub
    await register(stub, EMAIL)
    kept, ended = await login_tokens(stub, EMAIL), await login_tokens(stub, EMAIL)
    auth = bearer(kept.access_token)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ChangePassword(
            pb.ChangePasswordRequest(
                current_password="wrong-password-1", new_password=NEW_PASSWORD
            ),
            metadata=auth,
        )
    assert error_details(raised.value).reason == "INVALID_CREDENTIALS"
    await stub.ChangePassword(
        pb.ChangePasswordRequest(current_password=PASSWORD, new_password=NEW_PASSWORD),
        metadata=auth,
    )
    assert await _refresh_fails(stub, ended.refresh_token) == "REFRESH_TOKEN_INVALID"
    assert (await stub.Refresh(pb.RefreshRequest(refresh_token=kept.refresh_token))).tokens
    assert (await login_tokens(stub, EMAIL, NEW_PASSWORD)).access_token


async def test_password_reset_is_silent_single_use_and_ends_every_session(identity):
    stub = identity.stub
    await register(stub, EMAIL)
    session = await login_tokens(stub, EMAIL)

    await stub.RequestPasswordReset(pb.RequestPasswordResetRequest(email="nobody@example.com"))
    await stub.RequestPasswordReset(pb.RequestPasswordResetRequest(email=EMAIL))
    [requested] = await identity.events("PasswordResetRequested")  # only for the real account
    assert requested.email == EMAIL

    reset = pb.ResetPasswordRequest(token=requested.token, new_password=NEW_PASSWORD)
    await stub.ResetPassword(reset)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.ResetPassword(reset)
    assert error_details(raised.value).reason == "TOKEN_INVALID"
    assert await _refresh_fails(stub, session.refresh_token) == "REFRESH_TOKEN_INVALID"
    assert (await login_tokens(stub, EMAIL, NEW_PASSWORD)).access_token


async def test_a_new_reset_token_replaces_the_previous_one(identity):
    stub = identity.stub
    await register(stub, EMAIL)
    for _ in range(2):
        await stub.RequestPasswordReset(pb.RequestPasswordResetRequest(email=EMAIL))
    first, second = await identity.events("PasswordResetRequested")
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.ResetPassword(
            pb.ResetPasswordRequest(token=first.token, new_password=NEW_PASSWORD)
        )
    await stub.ResetPassword(pb.ResetPasswordRequest(token=second.token, new_password=NEW_PASSWORD))

"""Changing configuration under a live database: signing keys rotate without logging
anyone out, and password hashes follow the argon2 parameters on the next login."""

from __future__ import annotations

import base64
import os

import jwt

from pipworks.identity.v1 import identity_service_pb2 as pb
from tests.identity.support import (
    SIGNING_KEY_ID,
    SIGNING_SEED,
    bearer,
    login_tokens,
    register,
    running_identity,
)

EMAIL = "rotate@example.com"


async def test_tokens_of_the_previous_key_stay_valid_after_rotation(database_url, nats_url):
    async with running_identity(database_url, nats_url) as before:
        await register(before.stub, EMAIL)
        old = await login_tokens(before.stub, EMAIL)
    assert jwt.get_unverified_header(old.access_token)["kid"] == SIGNING_KEY_ID

    new_seed = base64.b64encode(os.urandom(32)).decode()
    rotated = {
        "identity_signing_keys": f"sig-next:{new_seed},{SIGNING_KEY_ID}:{SIGNING_SEED}",
        "identity_active_signing_key": "sig-next",
    }
    async with running_identity(database_url, nats_url, **rotated) as after:
        jwks = await after.stub.GetJwks(pb.GetJwksRequest())
        assert [k.kid for k in jwks.keys] == ["sig-next", SIGNING_KEY_ID]
        me = await after.stub.GetCurrentUser(
            pb.GetCurrentUserRequest(), metadata=bearer(old.access_token)
        )
        assert me.user.email == EMAIL
        refreshed = await after.stub.Refresh(pb.RefreshRequest(refresh_token=old.refresh_token))
        assert jwt.get_unverified_header(refreshed.tokens.access_token)["kid"] == "sig-next"


async def test_a_login_rehashes_under_new_argon2_parameters(database_url, nats_url):
    async with running_identity(database_url, nats_url) as cheap:
        await register(cheap.stub, EMAIL)
        original = await cheap.scalar("SELECT password_hash FROM users")
    assert "m=64,t=1,p=1" in original

    async with running_identity(
        database_url, nats_url, identity_argon2_memory_kib=128, identity_argon2_time_cost=2
    ) as stronger:
        await login_tokens(stronger.stub, EMAIL)
        upgraded = await stronger.scalar(
            "SELECT password_hash FROM users WHERE password_changed_at = created_at"
        )
        assert upgraded is not None  # a re-hash, not a password change
        assert "m=128,t=2,p=1" in upgraded
        await login_tokens(stronger.stub, EMAIL)  # and the new hash verifies
        assert await stronger.scalar("SELECT password_hash FROM users") == upgraded

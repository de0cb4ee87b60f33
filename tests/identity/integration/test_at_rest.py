"""A full database dump holds no secret in clear: not as text, not as bytes."""

from __future__ import annotations

import asyncio
import subprocess

from pipworks.identity.v1 import identity_service_pb2 as pb
from pipworks_devstack.postgres import POSTGRES_BIN_PATH
from pipworks_platform.db import libpq_dsn
from tests.identity.support import (
    PASSWORD,
    bearer,
    code_at,
    enable_totp,
    fresh_step,
    login_tokens,
    register,
)

EMAIL = "private@example.com"
PHONE = "+35799123456"


def _dump(database_url: str) -> bytes:
    return subprocess.run(
        [str(POSTGRES_BIN_PATH / "pg_dump"), "--no-owner", "--dbname", libpq_dsn(database_url)],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout


async def test_the_dump_contains_no_secret_in_clear(identity):
    stub = identity.stub
    await register(stub, EMAIL, phone=PHONE)
    first = await login_tokens(stub, EMAIL)
    step = await fresh_step()
    secret, recovery_codes = await enable_totp(stub, first.access_token, step)
    challenge = (
        await stub.Login(pb.LoginRequest(email=EMAIL, password=PASSWORD))
    ).mfa_challenge_token
    second = (
        await stub.VerifyMfa(
            pb.VerifyMfaRequest(mfa_challenge_token=challenge, totp_code=code_at(secret, step))
        )
    ).tokens
    refreshed = (await stub.Refresh(pb.RefreshRequest(refresh_token=second.refresh_token))).tokens
    pending = await stub.Login(pb.LoginRequest(email=EMAIL, password=PASSWORD))
    await stub.GetCurrentUser(pb.GetCurrentUserRequest(), metadata=bearer(refreshed.access_token))

    dump = await asyncio.to_thread(_dump, identity.database_url)
    assert b"CREATE TABLE public.users" in dump  # it is a real dump, with data
    assert EMAIL.encode() in dump
    secrets = {
        "password": PASSWORD,
        "TOTP secret": secret,
        "phone": PHONE,
        "refresh token (login)": first.refresh_token,
        "refresh token (MFA)": second.refresh_token,
        "refresh token (rotated)": refreshed.refresh_token,
        "MFA challenge": pending.mfa_challenge_token,
        **{f"recovery code {n}": code for n, code in enumerate(recovery_codes)},
        "recovery code (compact)": recovery_codes[0].replace("-", ""),
    }
    for what, value in secrets.items():
        raw = value.encode()
        assert raw not in dump, f"{what} is in the dump"
        assert raw.hex().encode() not in dump, f"{what} is in the dump as bytea"
    assert b"$argon2id$" in dump  # passwords are there only as argon2id hashes

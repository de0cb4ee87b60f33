"""Expired and spent rows are purged in the background, and the job stops on request."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from pipworks.identity.v1 import identity_service_pb2 as pb
from pipworks_identity.handlers import housekeeping
from pipworks_identity.housekeeper import Housekeeper
from tests.helpers import eventually
from tests.identity.support import login_tokens, register

EMAIL = "tidy@example.com"


async def test_a_pass_removes_what_can_no_longer_be_used(identity):
    stub = identity.stub
    await register(stub, EMAIL)
    live = await login_tokens(stub, EMAIL)
    ended = await login_tokens(stub, EMAIL)
    await stub.RequestPasswordReset(pb.RequestPasswordResetRequest(email=EMAIL))
    await identity.sql("UPDATE one_time_tokens SET expires_at = now() - interval '1 second'")
    await identity.sql(
        "UPDATE sessions SET revoked_at = now() - interval '100 days' WHERE id = $1::uuid",
        ended.session_id,
    )
    await identity.sql("UPDATE ip_throttle SET updated_at = now() - interval '1 day'")

    deleted = await housekeeping.purge(identity.deps)
    assert deleted is not None
    # Both verification tokens (the admin's and the user's) and the reset token.
    assert (deleted["one_time_tokens"], deleted["sessions"], deleted["ip_throttle"]) == (3, 1, 1)
    assert await identity.scalar("SELECT count(*) FROM sessions") == 1
    assert (await stub.Refresh(pb.RefreshRequest(refresh_token=live.refresh_token))).tokens


async def test_the_job_runs_at_once_and_stops_promptly(identity):
    await register(identity.stub, EMAIL)
    await identity.sql("UPDATE one_time_tokens SET expires_at = now() - interval '1 second'")
    housekeeper = Housekeeper(identity.deps, interval=timedelta(hours=1))
    task = asyncio.create_task(housekeeper.run())

    await eventually(
        lambda: identity.scalar("SELECT count(*) FROM one_time_tokens"), until=lambda n: n == 0
    )
    await housekeeper.stop()
    await asyncio.wait_for(task, timeout=2)

"""Administration: staff accounts, roles, service accounts, GetUser and the audit log."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import grpc
import jwt
import pytest

from pipworks.identity.v1 import identity_service_pb2 as pb
from pipworks_platform.grpc_errors import error_details
from tests.identity.support import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    PASSWORD,
    bearer,
    fresh_step,
    login_tokens,
    register,
    staff_token,
)

STAFF_EMAIL = "dana.dealer@broker.example"


@pytest.fixture
async def admin(identity) -> tuple[str, ...]:
    """Metadata of the bootstrap admin, signed in with TOTP (aal 2)."""
    step = await fresh_step()
    return bearer(await staff_token(identity.stub, ADMIN_EMAIL, ADMIN_PASSWORD, step))


async def _fails(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    details = error_details(raised.value)
    return details.code, details.reason


async def _audit(identity) -> list[tuple[str, str, dict]]:
    rows = await identity.sql("SELECT actor, action, details FROM audit_log ORDER BY sequence")
    return [(r["actor"], r["action"], json.loads(r["details"])) for r in rows]


async def test_staff_and_role_changes_are_audited_in_an_intact_chain(identity, admin):
    stub = identity.stub
    admin_id = await identity.scalar("SELECT id::text FROM users WHERE email = $1", ADMIN_EMAIL)

    created = await stub.CreateStaffUser(
        pb.CreateStaffUserRequest(
            email=STAFF_EMAIL, password=PASSWORD, roles=[pb.ROLE_DEALER], country_code="CY"
        ),
        metadata=admin,
    )
    staff = created.user
    assert (staff.kind, list(staff.roles), staff.email_verified) == (
        pb.USER_KIND_STAFF,
        [pb.ROLE_DEALER],
        False,
    )
    granted = await stub.GrantRole(
        pb.GrantRoleRequest(user_id=staff.user_id, role=pb.ROLE_SUPPORT), metadata=admin
    )
    assert set(granted.user.roles) == {pb.ROLE_DEALER, pb.ROLE_SUPPORT}
    again = await stub.GrantRole(  # already held: no change, nothing recorded
        pb.GrantRoleRequest(user_id=staff.user_id, role=pb.ROLE_SUPPORT), metadata=admin
    )
    assert set(again.user.roles) == {pb.ROLE_DEALER, pb.ROLE_SUPPORT}
    revoked = await stub.RevokeRole(
        pb.RevokeRoleRequest(user_id=staff.user_id, role=pb.ROLE_DEALER), metadata=admin
    )
    assert list(revoked.user.roles) == [pb.ROLE_SUPPORT]
    viewed = await stub.GetUser(pb.GetUserRequest(user_id=staff.user_id), metadata=admin)
    assert viewed.user.email == STAFF_EMAIL

    assert await _audit(identity) == [
        ("system", "user.bootstrap_admin_created", {"kind": "staff", "roles": ["admin"]}),
        (admin_id, "user.staff_created", {"kind": "staff", "roles": ["dealer"]}),
        (admin_id, "role.granted", {"role": "support"}),
        (admin_id, "role.revoked", {"role": "dealer"}),
        (admin_id, "user.viewed", {}),
    ]
    changes = [(e.role, e.granted, e.actor_id) for e in await identity.events("RoleChanged")]
    assert changes == [
        ("admin", True, "system"),
        ("dealer", True, admin_id),
        ("support", True, admin_id),
        ("dealer", False, admin_id),
    ]

    report = await stub.VerifyAuditLog(pb.VerifyAuditLogRequest(), metadata=admin)
    assert (report.intact, report.entries_checked, report.first_broken_sequence) == (True, 5, 0)
    assert (await _audit(identity))[-1][1] == "audit.verified"


async def test_a_tampered_entry_is_found(identity, admin):
    stub = identity.stub
    await stub.CreateStaffUser(
        pb.CreateStaffUserRequest(
            email=STAFF_EMAIL, password=PASSWORD, roles=[pb.ROLE_SUPPORT], country_code="CY"
        ),
        metadata=admin,
    )
    conn = await asyncpg.connect(identity.database_url.replace("+asyncpg", ""))
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE sequence = 2")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM audit_log")
        # Someone with the table owner's rights goes around the guard.
        await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete")
        await conn.execute(
            'UPDATE audit_log SET details = \'{"kind": "staff", "roles": ["admin"]}\' '
            "WHERE sequence = 2"
        )
    finally:
        await conn.close()
    report = await stub.VerifyAuditLog(pb.VerifyAuditLogRequest(), metadata=admin)
    assert (report.intact, report.entries_checked, report.first_broken_sequence) == (False, 2, 2)


async def test_only_admins_at_aal2_administer(identity):
    stub = identity.stub
    # The bootstrap admin has no TOTP yet: a password-only (aal 1) session.
    await register(stub, "client@example.com")
    client = bearer((await login_tokens(stub, "client@example.com")).access_token)
    admin_aal1 = bearer((await login_tokens(stub, ADMIN_EMAIL, ADMIN_PASSWORD)).access_token)
    request = pb.CreateStaffUserRequest(
        email=STAFF_EMAIL, password=PASSWORD, roles=[pb.ROLE_ADMIN], country_code="CY"
    )
    # Permission is checked before the request is even read: bad input or not.
    assert await _fails(stub.CreateStaffUser(request, metadata=client)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "MISSING_ROLE",
    )
    assert await _fails(stub.GetUser(pb.GetUserRequest(user_id="junk"), metadata=client)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "MISSING_ROLE",
    )
    assert await _fails(stub.CreateStaffUser(request, metadata=admin_aal1)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "AAL2_REQUIRED",
    )
    assert await _fails(stub.CreateStaffUser(request)) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_MISSING",
    )
    assert await identity.scalar("SELECT count(*) FROM users WHERE kind = 'staff'") == 1
    assert await identity.scalar("SELECT count(*) FROM audit_log") == 1


async def test_role_rules(identity, admin):
    stub = identity.stub
    client_id = (await register(stub, "client@example.com")).user_id
    admin_id = await identity.scalar("SELECT id::text FROM users WHERE email = $1", ADMIN_EMAIL)

    ib = await stub.GrantRole(
        pb.GrantRoleRequest(user_id=client_id, role=pb.ROLE_IB), metadata=admin
    )
    assert set(ib.user.roles) == {pb.ROLE_CLIENT, pb.ROLE_IB}
    assert await _fails(
        stub.GrantRole(pb.GrantRoleRequest(user_id=client_id, role=pb.ROLE_ADMIN), metadata=admin)
    ) == (grpc.StatusCode.FAILED_PRECONDITION, "ROLE_NOT_ALLOWED_FOR_ACCOUNT_KIND")
    assert await _fails(
        stub.RevokeRole(pb.RevokeRoleRequest(user_id=admin_id, role=pb.ROLE_ADMIN), metadata=admin)
    ) == (grpc.StatusCode.FAILED_PRECONDITION, "LAST_ROLE_OF_ACCOUNT")
    await stub.GrantRole(
        pb.GrantRoleRequest(user_id=admin_id, role=pb.ROLE_SUPPORT), metadata=admin
    )
    assert await _fails(
        stub.RevokeRole(pb.RevokeRoleRequest(user_id=admin_id, role=pb.ROLE_ADMIN), metadata=admin)
    ) == (grpc.StatusCode.FAILED_PRECONDITION, "LAST_ADMIN")
    missing = str(uuid.uuid4())
    assert await _fails(
        stub.GrantRole(pb.GrantRoleRequest(user_id=missing, role=pb.ROLE_IB), metadata=admin)
    ) == (grpc.StatusCode.NOT_FOUND, "NOT_FOUND")


async def test_refresh_picks_up_role_changes(identity, admin):
    stub = identity.stub
    client_id = (await register(stub, "client@example.com")).user_id
    tokens = await login_tokens(stub, "client@example.com")
    await stub.GrantRole(pb.GrantRoleRequest(user_id=client_id, role=pb.ROLE_IB), metadata=admin)
    refreshed = await stub.Refresh(pb.RefreshRequest(refresh_token=tokens.refresh_token))
    claims = jwt.decode(refreshed.tokens.access_token, options={"verify_signature": False})
    assert claims["roles"] == ["client", "ib"]


async def test_service_accounts_use_client_credentials(identity, admin):
    stub = identity.stub
    created = await stub.CreateServiceAccount(
        pb.CreateServiceAccountRequest(name="compliance-tool", roles=[pb.ROLE_COMPLIANCE]),
        metadata=admin,
    )
    assert created.client_id.startswith("sa_")
    assert len(created.client_secret) >= 40
    assert await _fails(
        stub.CreateServiceAccount(
            pb.CreateServiceAccountRequest(name="compliance-tool", roles=[pb.ROLE_SUPPORT]),
            metadata=admin,
        )
    ) == (grpc.StatusCode.ALREADY_EXISTS, "NAME_TAKEN")

    issued = await stub.AuthenticateServiceAccount(
        pb.AuthenticateServiceAccountRequest(
            client_id=created.client_id, client_secret=created.client_secret
        )
    )
    claims = jwt.decode(issued.access_token, options={"verify_signature": False})
    assert (claims["typ"], claims["sub"], claims["roles"], claims["aal"]) == (
        "service",
        created.client_id,
        ["compliance"],
        2,
    )
    assert "sid" not in claims
    # The service token passes the platform's checks: compliance may verify the audit log.
    report = await stub.VerifyAuditLog(
        pb.VerifyAuditLogRequest(), metadata=bearer(issued.access_token)
    )
    assert report.intact
    # But it is not a user: user-only calls say so.
    assert await _fails(
        stub.GetCurrentUser(pb.GetCurrentUserRequest(), metadata=bearer(issued.access_token))
    ) == (grpc.StatusCode.PERMISSION_DENIED, "USER_TOKEN_REQUIRED")

    for client_id, secret in [
        (created.client_id, "wrong-secret"),
        ("sa_" + "x" * 24, created.client_secret),
    ]:
        assert await _fails(
            stub.AuthenticateServiceAccount(
                pb.AuthenticateServiceAccountRequest(client_id=client_id, client_secret=secret)
            )
        ) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_CREDENTIALS")
    secret_hash = await identity.scalar("SELECT secret_hash FROM service_accounts")
    assert secret_hash.startswith("$argon2id$")


async def test_concurrent_appends_never_fork_the_chain(identity, admin):
    stub = identity.stub
    user_ids = [(await register(stub, f"c{n}@example.com")).user_id for n in range(10)]
    await asyncio.gather(
        *(
            stub.GrantRole(pb.GrantRoleRequest(user_id=u, role=pb.ROLE_IB), metadata=admin)
            for u in user_ids
        )
    )
    report = await stub.VerifyAuditLog(pb.VerifyAuditLogRequest(), metadata=admin)
    assert (report.intact, report.entries_checked) == (True, 11)

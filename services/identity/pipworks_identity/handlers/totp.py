"""TOTP two-factor authentication: enrol, confirm (with recovery codes), disable."""

from __future__ import annotations

from pipworks.events.v1 import identity_pb2
from pipworks_identity import commands
from pipworks_identity.adapters.qr import qr_png
from pipworks_identity.adapters.repositories import RecoveryCodeRepository, UserRepository
from pipworks_identity.domain.credentials import new_recovery_codes, recovery_code_digest
from pipworks_identity.domain.sessions import ClientInfo
from pipworks_identity.handlers import events
from pipworks_identity.handlers.attempts import invalid_credentials, record_failure, reserve_attempt
from pipworks_identity.handlers.context import Deps
from pipworks_identity.handlers.encryption import (
    totp_pending_secret_context,
    totp_secret_context,
)
from pipworks_identity.handlers.results import TotpEnrollment
from pipworks_platform.errors import FailedPrecondition, InvalidArgument, NotFound


def _already_enabled() -> FailedPrecondition:
    return FailedPrecondition(
        "two-factor authentication is already on; disable it first", reason="TOTP_ALREADY_ENABLED"
    )


async def enroll_totp(deps: Deps, caller: commands.Caller) -> TotpEnrollment:
    """A new secret, pending until confirmed with a code (a repeat replaces it)."""
    now = deps.clock()
    secret = deps.totp.new_secret()
    async with deps.uow() as uow:
        users = UserRepository(uow.session)
        record = await users.get(caller.user_id, for_update=True)
        if record is None:
            raise NotFound("user", str(caller.user_id))
        if record.user.totp_enabled:
            raise _already_enabled()
        sealed = deps.cipher.encrypt_text(
            secret, context=totp_pending_secret_context(caller.user_id)
        )
        await users.set_pending_totp(caller.user_id, sealed, now)
        await uow.commit()
    uri = deps.totp.provisioning_uri(secret, record.user.email)
    return TotpEnrollment(secret=secret, otpauth_uri=uri, qr_png=qr_png(uri))


async def confirm_totp(deps: Deps, caller: commands.Caller, cmd: commands.ConfirmTotp) -> list[str]:
    """Turn TOTP on after a valid code; returns the recovery codes (stored as digests)."""
    now = deps.clock()
    codes = new_recovery_codes()
    async with deps.uow() as uow:
        users = UserRepository(uow.session)
        record = await users.get(caller.user_id, for_update=True)
        if record is None:
            raise NotFound("user", str(caller.user_id))
        if record.user.totp_enabled:
            raise _already_enabled()
        if record.totp_pending_secret is None:
            raise FailedPrecondition("start with EnrollTotp", reason="TOTP_NOT_ENROLLED")
        secret = deps.cipher.decrypt_text(
            record.totp_pending_secret, context=totp_pending_secret_context(caller.user_id)
        )
        step = deps.totp.matching_step(secret, cmd.code, now)
        if step is None:
            raise InvalidArgument.for_field(
                "code", "does not match the authenticator app", reason="TOTP_CODE_MISMATCH"
            )
        sealed = deps.cipher.encrypt_text(secret, context=totp_secret_context(caller.user_id))
        await users.enable_totp(caller.user_id, sealed, step, now)
        await RecoveryCodeRepository(uow.session).replace(
            caller.user_id, [recovery_code_digest(str(caller.user_id), c) for c in codes], now
        )
        uow.emit(
            identity_pb2.TwoFactorEnabled(
                user_id=str(caller.user_id), occurred_at=events.timestamp(now)
            )
        )
        await uow.commit()
    return codes


async def disable_totp(
    deps: Deps, caller: commands.Caller, cmd: commands.DisableTotp, client: ClientInfo
) -> None:
    """Needs the password and a fresh code, both counted like login attempts."""
    now = deps.clock()
    async with deps.uow() as uow:
        record = await UserRepository(uow.session).get(caller.user_id)
    if record is None:
        raise NotFound("user", str(caller.user_id))
    if record.totp_secret is None:
        raise FailedPrecondition("two-factor authentication is off", reason="TOTP_NOT_ENABLED")
    attempt = await reserve_attempt(deps, caller.user_id, client, now)
    password_ok = await deps.hasher.verify(record.password_hash, cmd.password)
    secret = deps.cipher.decrypt_text(
        record.totp_secret, context=totp_secret_context(caller.user_id)
    )
    step = deps.totp.matching_step(secret, cmd.code, now)
    async with deps.uow() as uow:
        users = UserRepository(uow.session)
        if password_ok and step is not None and await users.accept_totp_step(caller.user_id, step):
            await users.disable_totp(caller.user_id, now)
            await users.refund_attempt(caller.user_id)
            await RecoveryCodeRepository(uow.session).delete_all(caller.user_id)
            uow.emit(
                identity_pb2.TwoFactorDisabled(
                    user_id=str(caller.user_id), occurred_at=events.timestamp(now)
                )
            )
            await uow.commit()
            return
        await record_failure(uow, deps, caller.user_id, attempt, now)
        await uow.commit()
    raise invalid_credentials()

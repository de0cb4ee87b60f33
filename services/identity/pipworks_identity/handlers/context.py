"""What every use case works with: the unit of work, adapters, policies and the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pipworks_identity.adapters.access_tokens import AccessTokenIssuer
from pipworks_identity.adapters.password_hasher import PasswordHasher
from pipworks_identity.adapters.totp import Totp
from pipworks_identity.domain.lockout import LockoutPolicy
from pipworks_identity.domain.passwords import PasswordPolicy
from pipworks_identity.domain.throttle import TokenBucketPolicy
from pipworks_platform.crypto import FieldCipher
from pipworks_platform.db import UnitOfWorkFactory


@dataclass(frozen=True)
class Lifetimes:
    access_token: timedelta = timedelta(minutes=10)
    refresh_token: timedelta = timedelta(days=14)
    session: timedelta = timedelta(days=30)
    mfa_challenge: timedelta = timedelta(minutes=5)
    email_verification: timedelta = timedelta(hours=48)
    password_reset: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class IdentityConfig:
    lifetimes: Lifetimes = field(default_factory=Lifetimes)
    lockout: LockoutPolicy = field(default_factory=LockoutPolicy)
    throttle: TokenBucketPolicy = field(
        default_factory=lambda: TokenBucketPolicy(capacity=30, refill_per_second=0.25)
    )
    password_policy: PasswordPolicy = field(default_factory=PasswordPolicy)
    # Development only: hand the email verification token back to the caller.
    reveal_verification_token: bool = False


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Deps:
    uow: UnitOfWorkFactory
    hasher: PasswordHasher
    totp: Totp
    tokens: AccessTokenIssuer
    cipher: FieldCipher
    config: IdentityConfig
    clock: Callable[[], datetime] = utc_now

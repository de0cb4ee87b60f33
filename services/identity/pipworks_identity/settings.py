"""Identity's settings: ``PIPWORKS_IDENTITY_*`` on top of what every service reads.

Defaults are production-sound (argon2id t=3, m=64 MiB, p=1; 10-minute access tokens;
5 failed attempts lock for 1, 5, 15, 60, then 240 minutes). Tests and development may
lower the argon2 cost; nothing here switches a safeguard off.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import cached_property
from typing import Annotated

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import NoDecode

from pipworks_identity.adapters.access_tokens import (
    SigningKeyError,
    SigningKeys,
    parse_signing_keys,
)
from pipworks_identity.adapters.password_hasher import Argon2Parameters
from pipworks_identity.domain.lockout import LockoutPolicy
from pipworks_identity.domain.passwords import PasswordPolicy
from pipworks_identity.domain.throttle import TokenBucketPolicy
from pipworks_identity.domain.values import InvalidValue, parse_country_code, parse_email
from pipworks_identity.handlers.context import IdentityConfig, Lifetimes
from pipworks_platform.settings import Environment, ServiceSettings

DAY = 86_400


class IdentitySettings(ServiceSettings):
    # Token signing (Ed25519 seeds, "kid:<base64 32 bytes>,kid2:...").
    identity_signing_keys: SecretStr
    identity_active_signing_key: str = Field(min_length=1)

    # Lifetimes, in seconds.
    identity_access_token_ttl_seconds: int = Field(default=600, ge=60, le=3600)
    identity_refresh_token_ttl_seconds: int = Field(default=14 * DAY, ge=300, le=90 * DAY)
    identity_session_max_age_seconds: int = Field(default=30 * DAY, ge=300, le=365 * DAY)
    identity_mfa_challenge_ttl_seconds: int = Field(default=300, ge=30, le=1800)
    identity_email_verification_ttl_seconds: int = Field(default=2 * DAY, ge=300, le=30 * DAY)
    identity_password_reset_ttl_seconds: int = Field(default=3600, ge=300, le=DAY)

    # argon2id cost (RFC 9106); raise them as hardware allows, old hashes upgrade on login.
    identity_argon2_time_cost: int = Field(default=3, ge=1, le=50)
    identity_argon2_memory_kib: int = Field(default=64 * 1024, ge=8, le=4 * 1024 * 1024)
    identity_argon2_parallelism: int = Field(default=1, ge=1, le=16)

    # Lockout after failed passwords or second factors, and the per-address throttle.
    identity_lockout_threshold: int = Field(default=5, ge=1, le=100)
    identity_lockout_durations_seconds: Annotated[tuple[int, ...], NoDecode] = (
        60,
        300,
        900,
        3600,
        14400,
    )
    identity_throttle_burst: int = Field(default=30, ge=1, le=100_000)
    identity_throttle_per_minute: float = Field(default=15.0, gt=0, le=1_000_000)

    identity_totp_issuer: str = Field(default="Pipworks", min_length=1, max_length=64)

    # First admin, created once on start-up when both are set.
    identity_bootstrap_admin_email: str | None = None
    identity_bootstrap_admin_password: SecretStr | None = Field(default=None, validate_default=True)
    identity_bootstrap_admin_country: str | None = None

    @field_validator("identity_signing_keys")
    @classmethod
    def _signing_keys(cls, value: SecretStr) -> SecretStr:
        try:
            parse_signing_keys(value.get_secret_value())
        except SigningKeyError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("identity_active_signing_key")
    @classmethod
    def _active_key(cls, value: str, info: ValidationInfo) -> str:
        keys = info.data.get("identity_signing_keys")
        if keys is not None and value.strip() not in parse_signing_keys(keys.get_secret_value()):
            raise ValueError("must be one of the key ids in PIPWORKS_IDENTITY_SIGNING_KEYS")
        return value.strip()

    @field_validator("identity_lockout_durations_seconds", mode="before")
    @classmethod
    def _durations(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                value = tuple(int(part) for part in value.split(",") if part.strip())
            except ValueError:
                raise ValueError(
                    "must be whole seconds separated by commas, e.g. 60,300,900"
                ) from None
        if isinstance(value, tuple | list) and (not value or any(int(v) <= 0 for v in value)):
            raise ValueError("must list at least one positive duration in seconds")
        return value

    @field_validator("identity_bootstrap_admin_email")
    @classmethod
    def _admin_email(cls, value: str | None) -> str | None:
        return _valid(parse_email, value) if value else None

    @field_validator("identity_bootstrap_admin_country")
    @classmethod
    def _admin_country(cls, value: str | None) -> str | None:
        return _valid(parse_country_code, value) if value else None

    @field_validator("identity_bootstrap_admin_password")
    @classmethod
    def _admin_password(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if "identity_bootstrap_admin_email" in info.data:  # else the email is already reported
            has_email = info.data["identity_bootstrap_admin_email"] is not None
            if has_email != (value is not None):
                raise ValueError("set together with PIPWORKS_IDENTITY_BOOTSTRAP_ADMIN_EMAIL")
        if value is not None:
            problems = PasswordPolicy().problems(value.get_secret_value())
            if problems:
                raise ValueError(f"the password {problems[0]}")
        return value

    # -- what the composition root needs -------------------------------------------------

    @cached_property
    def signing_keys(self) -> SigningKeys:
        """Parsed once: the token issuer and the local JWKS share it."""
        return SigningKeys.from_env_values(
            self.identity_signing_keys.get_secret_value(), self.identity_active_signing_key
        )

    @property
    def argon2(self) -> Argon2Parameters:
        return Argon2Parameters(
            time_cost=self.identity_argon2_time_cost,
            memory_kib=self.identity_argon2_memory_kib,
            parallelism=self.identity_argon2_parallelism,
        )

    @property
    def lifetimes(self) -> Lifetimes:
        return Lifetimes(
            access_token=timedelta(seconds=self.identity_access_token_ttl_seconds),
            refresh_token=timedelta(seconds=self.identity_refresh_token_ttl_seconds),
            session=timedelta(seconds=self.identity_session_max_age_seconds),
            mfa_challenge=timedelta(seconds=self.identity_mfa_challenge_ttl_seconds),
            email_verification=timedelta(seconds=self.identity_email_verification_ttl_seconds),
            password_reset=timedelta(seconds=self.identity_password_reset_ttl_seconds),
        )

    def identity_config(self, password_policy: PasswordPolicy) -> IdentityConfig:
        return IdentityConfig(
            lifetimes=self.lifetimes,
            lockout=LockoutPolicy(
                threshold=self.identity_lockout_threshold,
                durations=tuple(
                    timedelta(seconds=s) for s in self.identity_lockout_durations_seconds
                ),
            ),
            throttle=TokenBucketPolicy(
                capacity=self.identity_throttle_burst,
                refill_per_second=self.identity_throttle_per_minute / 60.0,
            ),
            password_policy=password_policy,
            reveal_verification_token=self.environment is Environment.DEVELOPMENT,
        )


def _valid(parse: Callable[[str], str], value: str) -> str:
    try:
        return parse(value)
    except InvalidValue as exc:
        raise ValueError(str(exc)) from None

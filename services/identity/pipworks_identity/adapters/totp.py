"""RFC 6238 TOTP with pyotp: secrets, provisioning URIs and code checks.

:meth:`Totp.matching_step` reports *which* time step a code belongs to rather than a
yes/no, because the replay rule (``domain.totp``) is about steps.
"""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp

from pipworks_identity.domain.totp import DIGITS, STEP_SECONDS, candidate_steps, is_well_formed

SECRET_LENGTH = 32  # base32 characters: 160 bits, the RFC 4226 recommendation


class Totp:
    def __init__(self, issuer: str) -> None:
        self._issuer = issuer

    @staticmethod
    def new_secret() -> str:
        return pyotp.random_base32(length=SECRET_LENGTH)

    def provisioning_uri(self, secret: str, account_name: str) -> str:
        """``otpauth://totp/Issuer:account?secret=...&issuer=Issuer`` for authenticator apps."""
        return self._otp(secret).provisioning_uri(name=account_name, issuer_name=self._issuer)

    def matching_step(self, secret: str, code: str, now: datetime) -> int | None:
        """The step within the drift window whose code equals ``code``, or None."""
        if not is_well_formed(code):
            return None
        otp = self._otp(secret)
        matched: int | None = None
        for step in candidate_steps(now):
            # Compare against every candidate, in constant time, so timing does not
            # reveal which step (if any) matched.
            if hmac.compare_digest(otp.generate_otp(step), code) and matched is None:
                matched = step
        return matched

    @staticmethod
    def _otp(secret: str) -> pyotp.TOTP:
        return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)

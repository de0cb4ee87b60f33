"""A caller of the suite as the broker's portal is one: everything through the gateway.

``Portal`` wraps the sign-up and login dance (email verification in development mode,
TOTP enrolment from the provisioning URI, the MFA challenge) so that demos and
end-to-end tests start from a signed-in ``Session`` instead of repeating it::

    portal = Portal(grpc.insecure_channel(gateway))
    client = portal.sign_up(referral_code="AB12CD")          # registered, email verified
    client = portal.enable_totp(client)                       # aal2 from now on
    staff = portal.sign_in(admin_email, admin_password)       # enrols TOTP if it has none
    stub = KycServiceStub(portal.channel); stub.Get...(req, metadata=staff.metadata)
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from dataclasses import dataclass

import grpc
import jwt
import pyotp

from pipworks.identity.v1 import identity_service_pb2 as identity_pb
from pipworks.identity.v1 import identity_service_pb2_grpc as identity_grpc

__all__ = ["CLIENT_PASSWORD", "Portal", "Session", "TotpDevice"]

CLIENT_PASSWORD = "plum-Orchard-sunrise-4417"  # noqa: S105 - demo and test users only
CALL_TIMEOUT = 15.0


class TotpDevice:
    """An authenticator app: codes from the provisioning URI, never one step twice.

    Identity refuses a code whose 30-second step is not later than the last one it
    accepted, so a second login within the same step uses the next step's code (inside
    the ±1 step drift window) or waits for the step after.
    """

    def __init__(self, provisioning_uri: str) -> None:
        self.uri = provisioning_uri
        self._totp = pyotp.parse_uri(provisioning_uri)
        self._last_step = -1

    def code(self) -> str:
        now_step = int(time.time()) // self._totp.interval
        step = max(now_step, self._last_step + 1)
        if step > now_step + 1:  # out of the window: wait for the next step
            time.sleep((step - 1) * self._totp.interval - time.time() + 0.05)
        self._last_step = step
        return self._totp.at(step * self._totp.interval)


@dataclass(frozen=True)
class Session:
    """A signed-in user: who it is and the bearer token the gateway wants."""

    user_id: str
    email: str
    password: str
    access_token: str
    refresh_token: str
    totp: TotpDevice | None = None

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.access_token}"),)

    @property
    def claims(self) -> dict[str, object]:
        """The access token's claims (already verified by whoever issued it)."""
        return jwt.decode(self.access_token, options={"verify_signature": False})

    @property
    def roles(self) -> list[str]:
        return list(self.claims.get("roles", []))  # type: ignore[call-overload]

    @property
    def aal(self) -> int:
        return int(self.claims.get("aal", 1))  # type: ignore[call-overload]


class Portal:
    """Identity calls through the gateway on ``channel``; other stubs share the channel."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.channel = channel
        self.identity = identity_grpc.IdentityServiceStub(channel)

    def sign_up(
        self,
        *,
        email: str | None = None,
        password: str = CLIENT_PASSWORD,
        country_code: str = "CY",
        referral_code: str = "",
    ) -> Session:
        """Register a client, verify its email (development mode hands out the token), log in."""
        email = email or f"client-{uuid.uuid4().hex[:10]}@example.com"
        registered = self.identity.Register(
            identity_pb.RegisterRequest(
                email=email,
                password=password,
                country_code=country_code,
                referral_code=referral_code,
            ),
            timeout=CALL_TIMEOUT,
        )
        if registered.email_verification_token:
            self.identity.VerifyEmail(
                identity_pb.VerifyEmailRequest(token=registered.email_verification_token),
                timeout=CALL_TIMEOUT,
            )
        return self.sign_in(email, password, enrol_totp=False)

    def sign_in(
        self,
        email: str,
        password: str,
        totp: TotpDevice | None = None,
        *,
        enrol_totp: bool = True,
    ) -> Session:
        """Log in, answering the MFA challenge with ``totp``.

        With ``enrol_totp`` a user without a second factor enrols one first, so the
        session returned is aal2 (what staff actions require).
        """
        reply = self.identity.Login(
            identity_pb.LoginRequest(email=email, password=password), timeout=CALL_TIMEOUT
        )
        if reply.mfa_challenge_token:
            if totp is None:
                raise ValueError(f"{email} has two-factor login on: pass its TotpDevice")
            verified = self.identity.VerifyMfa(
                identity_pb.VerifyMfaRequest(
                    mfa_challenge_token=reply.mfa_challenge_token, totp_code=totp.code()
                ),
                timeout=CALL_TIMEOUT,
            )
            tokens = verified.tokens
        else:
            tokens = reply.tokens
        session = Session(
            user_id=str(
                jwt.decode(tokens.access_token, options={"verify_signature": False})["sub"]
            ),
            email=email,
            password=password,
            access_token=tokens.access_token,
            refresh_token=tokens.refresh_token,
            totp=totp,
        )
        if enrol_totp and totp is None:
            return self.enable_totp(session)
        return session

    def enable_totp(self, session: Session) -> Session:
        """Enrol TOTP from the provisioning URI, confirm it, log in again at aal2."""
        enrolment = self.identity.EnrollTotp(
            identity_pb.EnrollTotpRequest(), metadata=session.metadata, timeout=CALL_TIMEOUT
        )
        device = TotpDevice(enrolment.otpauth_uri)
        self.identity.ConfirmTotp(
            identity_pb.ConfirmTotpRequest(code=device.code()),
            metadata=session.metadata,
            timeout=CALL_TIMEOUT,
        )
        return self.sign_in(session.email, session.password, device)

    def create_staff(
        self, admin: Session, roles: list[int], *, email: str | None = None
    ) -> Session:
        """A staff user with ``roles`` (``identity_pb.ROLE_*``), created by ``admin``, at aal2."""
        email = email or f"staff-{uuid.uuid4().hex[:10]}@broker.example"
        password = f"staff-{uuid.uuid4().hex}-Pw1"
        self.identity.CreateStaffUser(
            identity_pb.CreateStaffUserRequest(
                email=email, password=password, roles=roles, country_code="CY"
            ),
            metadata=admin.metadata,
            timeout=CALL_TIMEOUT,
        )
        return self.sign_in(email, password)

    def grant_role(self, admin: Session, session: Session, role: int) -> Session:
        """Grant ``role`` (``identity_pb.ROLE_*``) to ``session``'s user; its refreshed session.

        Raises ValueError if the refreshed token still lacks the role.
        """
        self.identity.GrantRole(
            identity_pb.GrantRoleRequest(user_id=session.user_id, role=role),
            metadata=admin.metadata,
            timeout=CALL_TIMEOUT,
        )
        refreshed = self.refreshed(session)
        name = identity_pb.Role.Name(role).removeprefix("ROLE_").lower()
        if name not in refreshed.roles:
            raise ValueError(f"the refreshed token has roles {refreshed.roles}, not {name}")
        return refreshed

    def refreshed(self, session: Session) -> Session:
        """The same user with a fresh access token (after a role change, say)."""
        reply = self.identity.Refresh(
            identity_pb.RefreshRequest(refresh_token=session.refresh_token), timeout=CALL_TIMEOUT
        )
        return dataclasses.replace(
            session,
            access_token=reply.tokens.access_token,
            refresh_token=reply.tokens.refresh_token,
        )

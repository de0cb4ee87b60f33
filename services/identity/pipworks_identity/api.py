"""gRPC surface of the identity service: proto in, command, use case, proto out.

Who may call what is decided before any of this runs, by the platform's AuthInterceptor
from each method's ``(pipworks.common.v1.policy)``; here the caller is only *read*.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import grpc

from pipworks.common.v1 import pagination_pb2, service_info_pb2
from pipworks.identity.v1 import identity_service_pb2 as pb
from pipworks.identity.v1 import identity_service_pb2_grpc as pb_grpc
from pipworks_identity import commands
from pipworks_identity.adapters.qr import PNG_MEDIA_TYPE
from pipworks_identity.adapters.repositories import SessionRecord
from pipworks_identity.domain.roles import Role, UserKind
from pipworks_identity.domain.users import User
from pipworks_identity.handlers import Deps, accounts, audit, login, sessions, staff, totp
from pipworks_identity.handlers.results import TokenPair
from pipworks_identity.peer import client_info
from pipworks_identity.validation import ROLE_FROM_PROTO, RequestParser, encode_cursor
from pipworks_platform.auth import require_principal
from pipworks_platform.errors import PermissionDenied, Unauthenticated

Context = grpc.aio.ServicerContext

ROLE_TO_PROTO = {role: number for number, role in ROLE_FROM_PROTO.items()}
KIND_TO_PROTO = {UserKind.CLIENT: pb.USER_KIND_CLIENT, UserKind.STAFF: pb.USER_KIND_STAFF}


class IdentityApi(pb_grpc.IdentityServiceServicer):
    def __init__(
        self,
        deps: Deps,
        parse: RequestParser,
        jwks: Callable[[], list[dict[str, str]]],
        describe: Callable[[], service_info_pb2.ServiceInfo],
    ) -> None:
        self._deps = deps
        self._parse = parse
        self._jwks = jwks
        self._describe = describe

    # -- public ------------------------------------------------------------------------

    async def Register(self, request: pb.RegisterRequest, context: Context) -> pb.RegisterResponse:
        cmd = self._parse.register(request)
        result = await accounts.register(self._deps, cmd, client_info(context))
        return pb.RegisterResponse(
            user_id=str(result.user_id), email_verification_token=result.verification_token or ""
        )

    async def VerifyEmail(
        self, request: pb.VerifyEmailRequest, context: Context
    ) -> pb.VerifyEmailResponse:
        cmd = self._parse.verify_email(request)
        await accounts.verify_email(self._deps, cmd, client_info(context))
        return pb.VerifyEmailResponse()

    async def Login(self, request: pb.LoginRequest, context: Context) -> pb.LoginResponse:
        cmd = self._parse.login(request)
        result = await login.login(self._deps, cmd, client_info(context))
        if result.challenge is not None:
            response = pb.LoginResponse(mfa_challenge_token=result.challenge.token)
            response.mfa_challenge_expires_at.FromDatetime(result.challenge.expires_at)
            return response
        assert result.tokens is not None
        return pb.LoginResponse(tokens=_token_pair(result.tokens))

    async def VerifyMfa(
        self, request: pb.VerifyMfaRequest, context: Context
    ) -> pb.VerifyMfaResponse:
        cmd = self._parse.verify_mfa(request)
        tokens = await login.verify_mfa(self._deps, cmd, client_info(context))
        return pb.VerifyMfaResponse(tokens=_token_pair(tokens))

    async def Refresh(self, request: pb.RefreshRequest, context: Context) -> pb.RefreshResponse:
        tokens = await login.refresh(self._deps, self._parse.refresh(request))
        return pb.RefreshResponse(tokens=_token_pair(tokens))

    async def AuthenticateServiceAccount(
        self, request: pb.AuthenticateServiceAccountRequest, context: Context
    ) -> pb.AuthenticateServiceAccountResponse:
        cmd = self._parse.authenticate_service_account(request)
        token = await login.authenticate_service_account(self._deps, cmd, client_info(context))
        response = pb.AuthenticateServiceAccountResponse(access_token=token.token)
        response.access_token_expires_at.FromDatetime(token.expires_at)
        return response

    async def GetJwks(self, request: pb.GetJwksRequest, context: Context) -> pb.GetJwksResponse:
        return pb.GetJwksResponse(keys=[pb.Jwk(**jwk) for jwk in self._jwks()])

    async def RequestPasswordReset(
        self, request: pb.RequestPasswordResetRequest, context: Context
    ) -> pb.RequestPasswordResetResponse:
        cmd = self._parse.request_password_reset(request)
        await accounts.request_password_reset(self._deps, cmd, client_info(context))
        return pb.RequestPasswordResetResponse()

    async def ResetPassword(
        self, request: pb.ResetPasswordRequest, context: Context
    ) -> pb.ResetPasswordResponse:
        cmd = self._parse.reset_password(request)
        await accounts.reset_password(self._deps, cmd, client_info(context))
        return pb.ResetPasswordResponse()

    # -- the caller's own account --------------------------------------------------------

    async def Logout(self, request: pb.LogoutRequest, context: Context) -> pb.LogoutResponse:
        await sessions.logout(self._deps, _caller())
        return pb.LogoutResponse()

    async def GetCurrentUser(
        self, request: pb.GetCurrentUserRequest, context: Context
    ) -> pb.GetCurrentUserResponse:
        user = await accounts.get_current_user(self._deps, _caller())
        return pb.GetCurrentUserResponse(user=self._user(user))

    async def ChangePassword(
        self, request: pb.ChangePasswordRequest, context: Context
    ) -> pb.ChangePasswordResponse:
        caller = _caller()
        cmd = self._parse.change_password(request)
        await accounts.change_password(self._deps, caller, cmd, client_info(context))
        return pb.ChangePasswordResponse()

    async def EnrollTotp(
        self, request: pb.EnrollTotpRequest, context: Context
    ) -> pb.EnrollTotpResponse:
        enrollment = await totp.enroll_totp(self._deps, _caller())
        return pb.EnrollTotpResponse(
            secret=enrollment.secret,
            otpauth_uri=enrollment.otpauth_uri,
            qr_code=enrollment.qr_png,
            qr_code_media_type=PNG_MEDIA_TYPE,
        )

    async def ConfirmTotp(
        self, request: pb.ConfirmTotpRequest, context: Context
    ) -> pb.ConfirmTotpResponse:
        caller = _caller()
        codes = await totp.confirm_totp(self._deps, caller, self._parse.confirm_totp(request))
        return pb.ConfirmTotpResponse(recovery_codes=codes)

    async def DisableTotp(
        self, request: pb.DisableTotpRequest, context: Context
    ) -> pb.DisableTotpResponse:
        caller = _caller()
        cmd = self._parse.disable_totp(request)
        await totp.disable_totp(self._deps, caller, cmd, client_info(context))
        return pb.DisableTotpResponse()

    async def ListSessions(
        self, request: pb.ListSessionsRequest, context: Context
    ) -> pb.ListSessionsResponse:
        caller = _caller()
        page = await sessions.list_sessions(self._deps, caller, self._parse.list_sessions(request))
        return pb.ListSessionsResponse(
            sessions=[_session(s, current=s.id == caller.session_id) for s in page.sessions],
            page=pagination_pb2.PageResponse(
                next_page_token=encode_cursor(page.next_cursor) if page.next_cursor else ""
            ),
        )

    async def RevokeSession(
        self, request: pb.RevokeSessionRequest, context: Context
    ) -> pb.RevokeSessionResponse:
        caller = _caller()
        await sessions.revoke_session(self._deps, caller, self._parse.revoke_session(request))
        return pb.RevokeSessionResponse()

    # -- staff ---------------------------------------------------------------------------

    async def CreateStaffUser(
        self, request: pb.CreateStaffUserRequest, context: Context
    ) -> pb.CreateStaffUserResponse:
        actor = require_principal().subject
        user = await staff.create_staff_user(
            self._deps, actor, self._parse.create_staff_user(request)
        )
        return pb.CreateStaffUserResponse(user=self._user(user))

    async def GrantRole(
        self, request: pb.GrantRoleRequest, context: Context
    ) -> pb.GrantRoleResponse:
        actor = require_principal().subject
        user = await staff.grant_role(self._deps, actor, self._parse.change_role(request))
        return pb.GrantRoleResponse(user=self._user(user))

    async def RevokeRole(
        self, request: pb.RevokeRoleRequest, context: Context
    ) -> pb.RevokeRoleResponse:
        actor = require_principal().subject
        user = await staff.revoke_role(self._deps, actor, self._parse.change_role(request))
        return pb.RevokeRoleResponse(user=self._user(user))

    async def CreateServiceAccount(
        self, request: pb.CreateServiceAccountRequest, context: Context
    ) -> pb.CreateServiceAccountResponse:
        actor = require_principal().subject
        cmd = self._parse.create_service_account(request)
        created = await staff.create_service_account(self._deps, actor, cmd)
        return pb.CreateServiceAccountResponse(
            client_id=created.client_id, client_secret=created.client_secret
        )

    async def GetUser(self, request: pb.GetUserRequest, context: Context) -> pb.GetUserResponse:
        actor = require_principal().subject
        user = await staff.get_user(self._deps, actor, self._parse.get_user(request))
        return pb.GetUserResponse(user=self._user(user))

    async def VerifyAuditLog(
        self, request: pb.VerifyAuditLogRequest, context: Context
    ) -> pb.VerifyAuditLogResponse:
        report = await audit.verify_audit_log(self._deps, require_principal().subject)
        return pb.VerifyAuditLogResponse(
            intact=report.intact,
            entries_checked=report.entries_checked,
            first_broken_sequence=report.first_broken_sequence,
        )

    async def GetServiceInfo(
        self, request: pb.GetServiceInfoRequest, context: Context
    ) -> pb.GetServiceInfoResponse:
        return pb.GetServiceInfoResponse(info=self._describe())

    def _user(self, user: User) -> pb.User:
        return user_proto(user, self._deps.clock())


def _caller() -> commands.Caller:
    """The user behind the token; service-account tokens have no account of their own."""
    principal = require_principal()
    if principal.is_service:
        raise PermissionDenied("this call needs a user's token", reason="USER_TOKEN_REQUIRED")
    try:
        user_id = uuid.UUID(principal.subject)
        session_id = uuid.UUID(principal.session_id) if principal.session_id else None
    except ValueError:
        raise Unauthenticated("invalid access token", reason="TOKEN_INVALID") from None
    return commands.Caller(user_id=user_id, session_id=session_id)


def user_proto(user: User, now: datetime) -> pb.User:
    message = pb.User(
        user_id=str(user.id),
        email=user.email,
        email_verified=user.email_verified_at is not None,
        kind=KIND_TO_PROTO[user.kind],
        roles=[ROLE_TO_PROTO[Role(name)] for name in user.role_names],
        country_code=user.country_code or "",
        totp_enabled=user.totp_enabled,
        kyc_level=user.kyc_level,
    )
    message.created_at.FromDatetime(user.created_at)
    if user.is_locked(now):
        assert user.locked_until is not None
        message.locked_until.FromDatetime(user.locked_until)
    return message


def _token_pair(tokens: TokenPair) -> pb.TokenPair:
    message = pb.TokenPair(
        access_token=tokens.access_token.token,
        refresh_token=tokens.refresh_token,
        session_id=str(tokens.session_id),
    )
    message.access_token_expires_at.FromDatetime(tokens.access_token.expires_at)
    message.refresh_token_expires_at.FromDatetime(tokens.refresh_expires_at)
    return message


def _session(session: SessionRecord, *, current: bool) -> pb.Session:
    message = pb.Session(
        session_id=str(session.id),
        ip_address=session.client.ip_address,
        user_agent=session.client.user_agent,
        aal=session.aal,
        current=current,
    )
    message.created_at.FromDatetime(session.created_at)
    message.last_used_at.FromDatetime(session.last_used_at)
    return message

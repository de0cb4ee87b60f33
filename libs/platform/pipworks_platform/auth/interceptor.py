"""Server interceptor that authenticates and authorises every call by its proto policy.

Every service runs it, the gateway included, so a call that reaches a backend directly
is held to the same rules as one that came through the gateway. Permission is decided
before the handler runs, hence before anything about the requested resource is known.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc

from pipworks_platform.auth.policy import ALWAYS_PUBLIC_SERVICES, Policy, authorize, policy_for
from pipworks_platform.auth.principal import Principal, bind_principal, unbind_principal
from pipworks_platform.auth.tokens import TokenVerifier
from pipworks_platform.errors import PermissionDenied, Unauthenticated
from pipworks_platform.interceptors import wrap_handler


def bearer_token(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    """The token of an ``authorization: Bearer <token>`` header, if there is one."""
    for key, value in metadata or ():
        if key.lower() != "authorization":
            continue
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        scheme, _, token = text.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None


class AuthInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        if method.split("/")[1] in ALWAYS_PUBLIC_SERVICES:
            return handler
        return wrap_handler(handler, _Authenticated(self._verifier, policy_for(method)))


class _Authenticated:
    def __init__(self, verifier: TokenVerifier, policy: Policy | None) -> None:
        self._verifier = verifier
        self._policy = policy

    async def _caller(self, context: grpc.aio.ServicerContext) -> Principal | None:
        if self._policy is None:
            raise PermissionDenied("this method is not exposed", reason="NO_METHOD_POLICY")
        if self._policy.public:
            return None
        token = bearer_token(context.invocation_metadata())
        if token is None:
            raise Unauthenticated("a bearer token is required", reason="TOKEN_MISSING")
        principal = await self._verifier.verify(token)
        authorize(principal, self._policy)
        return principal

    async def unary(self, behavior: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        bound = bind_principal(await self._caller(context))
        try:
            return await behavior(request, context)
        finally:
            unbind_principal(bound)

    async def streaming(
        self, behavior: Any, request: Any, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[Any]:
        bound = bind_principal(await self._caller(context))
        try:
            async for response in behavior(request, context):
                yield response
        finally:
            unbind_principal(bound)

"""Authentication and authorisation shared by the gateway and every backend.

See CONTRACT.md beside this file for the token claims and the API.
"""

from pipworks_platform.auth.interceptor import AuthInterceptor, bearer_token
from pipworks_platform.auth.jwks import (
    JwksCache,
    JwksFetch,
    JwksUnavailable,
    identity_jwks_fetch,
    jwk_from_public_key,
    public_key_from_jwk,
)
from pipworks_platform.auth.policy import Policy, authorize, policy_for
from pipworks_platform.auth.principal import (
    SERVICE,
    USER,
    Principal,
    current_principal,
    require_principal,
)
from pipworks_platform.auth.tokens import ALGORITHM, TokenVerifier

__all__ = [
    "ALGORITHM",
    "SERVICE",
    "USER",
    "AuthInterceptor",
    "JwksCache",
    "JwksFetch",
    "JwksUnavailable",
    "Policy",
    "Principal",
    "TokenVerifier",
    "authorize",
    "bearer_token",
    "current_principal",
    "identity_jwks_fetch",
    "jwk_from_public_key",
    "policy_for",
    "public_key_from_jwk",
    "require_principal",
]

"""Per-method access policy, declared in the protos with ``(pipworks.common.v1.policy)``.

The gateway and every backend read the same descriptor, so policy lives in one place
and travels with the API. A method without a policy is refused to everybody.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import ServiceDescriptor

from pipworks.common.v1 import auth_pb2
from pipworks_platform.auth.principal import Principal
from pipworks_platform.errors import PermissionDenied
from pipworks_platform.protos import load_proto_package

ALWAYS_PUBLIC_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)
DEFAULT_RATE_LIMIT_CLASS = "default"


@dataclass(frozen=True)
class Policy:
    public: bool = False
    roles: frozenset[str] = frozenset()
    require_aal2: bool = False
    require_aal2_if_enrolled: bool = False
    rate_limit_class: str = DEFAULT_RATE_LIMIT_CLASS


PUBLIC = Policy(public=True)


def split_method(method: str) -> tuple[str, str]:
    """``/pkg.Service/Method`` → (``pkg.Service``, ``Method``)."""
    _, service, name = method.split("/", 2) if method.count("/") == 2 else ("", "", "")
    return service, name


@lru_cache(maxsize=4096)
def policy_for(method: str) -> Policy | None:
    service, name = split_method(method)
    if service in ALWAYS_PUBLIC_SERVICES:
        return PUBLIC
    descriptor = _find_service(service)
    if descriptor is None:
        return None
    method_descriptor = descriptor.methods_by_name.get(name)
    if method_descriptor is None:
        return None
    options = method_descriptor.GetOptions()
    if not options.HasExtension(auth_pb2.policy):
        return None
    declared = options.Extensions[auth_pb2.policy]
    return Policy(
        public=declared.public,
        roles=frozenset(declared.roles),
        require_aal2=declared.require_aal2,
        require_aal2_if_enrolled=declared.require_aal2_if_enrolled,
        rate_limit_class=declared.rate_limit_class or DEFAULT_RATE_LIMIT_CLASS,
    )


def _find_service(full_name: str) -> ServiceDescriptor | None:
    pool = descriptor_pool.Default()
    try:
        return pool.FindServiceByName(full_name)
    except KeyError:
        pass
    package = full_name.rpartition(".")[0]
    if not package.startswith("pipworks.") or not load_proto_package(package):
        return None
    try:
        return pool.FindServiceByName(full_name)
    except KeyError:
        return None


def authorize(principal: Principal, policy: Policy) -> None:
    """Raise PermissionDenied unless the principal satisfies the policy."""
    if policy.roles and not principal.has_any_role(policy.roles):
        raise PermissionDenied("the caller lacks a required role", reason="MISSING_ROLE")
    needs_aal2 = policy.require_aal2 or (policy.require_aal2_if_enrolled and principal.mfa_enabled)
    if needs_aal2 and principal.aal < 2:
        raise PermissionDenied(
            "this call needs a two-factor authenticated session", reason="AAL2_REQUIRED"
        )

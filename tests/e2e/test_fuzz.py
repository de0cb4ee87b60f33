"""Random requests to every RPC through the gateway never get INTERNAL, UNKNOWN or a hang.

Each RPC's requests are built from its descriptor (``tests.e2e.descriptors``) and sent
by callers the policy lets through, so the handler code runs: a staff admin at aal2 for
every method, a client at aal2, and an IB where the policy names ``ib``. Whatever the
values, the answer is OK or a status a caller can act on; never INTERNAL or UNKNOWN (a
bug) nor DEADLINE_EXCEEDED (a hang). Afterwards every service is still SERVING.

Random calls can end the caller's own session (Logout, RevokeSession, ChangePassword…);
a caller answered UNAUTHENTICATED signs in again and the example is retried once.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import text_format
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipworks.identity.v1 import identity_service_pb2 as identity_pb
from pipworks_devstack.local_suite import LocalSuite
from pipworks_devstack.portal import Portal, Session
from tests.e2e.descriptors import RPCS, Rpc, requests
from tests.helpers import health_status

pytestmark = [pytest.mark.xdist_group("e2e-fuzz"), pytest.mark.slow]

# About a minute and a half for the module; set PIPWORKS_FUZZ_EXAMPLES for a deeper run.
EXAMPLES_PER_RPC = int(os.environ.get("PIPWORKS_FUZZ_EXAMPLES", "40"))
CALL_TIMEOUT = 10.0
BUGS = {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DEADLINE_EXCEEDED,
}
FUZZ = settings(
    max_examples=EXAMPLES_PER_RPC,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def full_suite_env() -> dict[str, dict[str, str]]:
    # Thousands of calls from one address and three subjects: rate limits off.
    return {
        "gateway": {
            "PIPWORKS_GATEWAY_RATE_LIMITS": (
                "auth.ip=off,auth.subject=off,default.ip=off,default.subject=off"
            )
        }
    }


class Caller:
    """A signed-in user who signs in again when a random call ended its session."""

    def __init__(self, portal: Portal, name: str, session: Session) -> None:
        self.portal = portal
        self.name = name
        self.session = session

    def revive(self) -> None:
        try:
            self.session = self.portal.refreshed(self.session)
        except grpc.RpcError:
            self.session = self.portal.sign_in(
                self.session.email, self.session.password, self.session.totp
            )


@pytest.fixture(scope="module")
def channel(full_suite: LocalSuite) -> Iterator[grpc.Channel]:
    options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
    with grpc.insecure_channel(full_suite.gateway, options=options) as channel:
        yield channel


@pytest.fixture(scope="module")
def callers(full_suite: LocalSuite, channel: grpc.Channel) -> dict[str, Caller]:
    portal = Portal(channel)
    bootstrap = portal.sign_in(full_suite.admin_email, full_suite.admin_password)
    admin = portal.create_staff(bootstrap, [identity_pb.ROLE_ADMIN])
    client = portal.enable_totp(portal.sign_up())
    ib = portal.enable_totp(portal.sign_up())
    ib = portal.grant_role(bootstrap, ib, identity_pb.ROLE_IB)
    return {
        "admin": Caller(portal, "admin", admin),
        "client": Caller(portal, "client", client),
        "ib": Caller(portal, "ib", ib),
    }


def callers_for(rpc: Rpc, callers: dict[str, Caller]) -> list[Caller]:
    policy = rpc.policy
    chosen = [callers["admin"], callers["client"]]
    if policy is not None and "ib" in policy.roles:
        chosen.append(callers["ib"])
    return chosen


def call(
    channel: grpc.Channel, rpc: Rpc, messages: list[Message], caller: Caller
) -> grpc.StatusCode:
    """Send ``messages`` (one unless the client streams); the status the call ended with."""
    start = getattr(channel, rpc.kind)(
        rpc.path,
        request_serializer=rpc.request_type.SerializeToString,
        response_deserializer=rpc.response_type.FromString,
    )
    request = iter(messages) if rpc.client_streaming else messages[0]
    try:
        reply = start(request, metadata=caller.session.metadata, timeout=CALL_TIMEOUT)
        if rpc.server_streaming:
            for _ in reply:
                pass
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def describe(rpc: Rpc, messages: list[Message], caller: Caller, status: grpc.StatusCode) -> str:
    shown = "\n".join(
        text_format.MessageToString(m, as_one_line=True, print_unknown_fields=True)[:2000]
        for m in messages
    )
    return f"{rpc.path} as {caller.name} → {status.name}; request:\n{shown}"


@pytest.fixture(scope="module")
def known(callers: dict[str, Caller]) -> tuple[str, ...]:
    """Ids that exist, for requests to name now and then: the callers' own."""
    return tuple(caller.session.user_id for caller in callers.values())


@pytest.mark.parametrize("rpc", RPCS, ids=str)
def test_random_requests_never_get_internal_unknown_or_hang(
    rpc: Rpc, channel: grpc.Channel, callers: dict[str, Caller], known: tuple[str, ...]
):
    size = (1, 3) if rpc.client_streaming else (1, 1)
    who = callers_for(rpc, callers)

    @FUZZ
    @given(
        messages=st.lists(requests(rpc, known), min_size=size[0], max_size=size[1]),
        caller=st.sampled_from(who),
    )
    def fuzz(messages: list[Message], caller: Caller) -> None:
        status = call(channel, rpc, messages, caller)
        if status == grpc.StatusCode.UNAUTHENTICATED and not rpc.public:
            caller.revive()
            status = call(channel, rpc, messages, caller)
        assert status not in BUGS, describe(rpc, messages, caller, status)

    fuzz()


def test_every_service_is_still_serving_and_answers(
    full_suite: LocalSuite, channel: grpc.Channel, callers: dict[str, Caller]
):
    for name in full_suite.names:
        if full_suite.service(name).is_grpc:
            port = int(full_suite.address(name).rpartition(":")[2])
            assert health_status(port) == "SERVING", name
    admin = callers["admin"]
    admin.revive()
    me = Portal(channel).identity.GetCurrentUser(
        identity_pb.GetCurrentUserRequest(), metadata=admin.session.metadata, timeout=CALL_TIMEOUT
    )
    assert me.user.user_id == admin.session.user_id
    unused = dataclasses.replace(admin.session, access_token=str(uuid.uuid4()))
    with pytest.raises(grpc.RpcError) as refused:
        Portal(channel).identity.GetCurrentUser(
            identity_pb.GetCurrentUserRequest(), metadata=unused.metadata, timeout=CALL_TIMEOUT
        )
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

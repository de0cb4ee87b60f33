"""The gateway holds against callers who must not get in and bytes that are not a request.

Every case is generated from the service descriptors and their
``(pipworks.common.v1.policy)`` (``tests.e2e.descriptors``), so a new method is attacked
without being listed here; only the public methods are listed, on purpose: making a
method public has to change this file.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import asyncpg
import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pipworks.ib.v1 import ib_service_pb2 as ib_pb
from pipworks.ib.v1 import ib_service_pb2_grpc as ib_grpc
from pipworks.identity.v1 import identity_service_pb2 as identity_pb
from pipworks.kyc.v1 import kyc_service_pb2 as kyc_pb
from pipworks.kyc.v1 import kyc_service_pb2_grpc as kyc_grpc
from pipworks.mtbridge.v1 import mtbridge_service_pb2 as mtbridge_pb
from pipworks.mtbridge.v1 import mtbridge_service_pb2_grpc as mtbridge_grpc
from pipworks_devstack.demo.files import png_image
from pipworks_devstack.local_suite import LocalSuite
from pipworks_devstack.portal import Portal, Session
from pipworks_platform.grpc_errors import error_details
from tests.e2e.descriptors import RPCS, Rpc
from tests.helpers import health_status
from tests.tokens import TokenAuthority

pytestmark = pytest.mark.xdist_group("e2e-attack-surface")

T = TypeVar("T")
TIMEOUT = 10.0

EXPECTED_PUBLIC = {
    "/pipworks.ib.v1.IbService/RecordLinkClick",
    "/pipworks.identity.v1.IdentityService/AuthenticateServiceAccount",
    "/pipworks.identity.v1.IdentityService/GetJwks",
    "/pipworks.identity.v1.IdentityService/Login",
    "/pipworks.identity.v1.IdentityService/Refresh",
    "/pipworks.identity.v1.IdentityService/Register",
    "/pipworks.identity.v1.IdentityService/RequestPasswordReset",
    "/pipworks.identity.v1.IdentityService/ResetPassword",
    "/pipworks.identity.v1.IdentityService/VerifyEmail",
    "/pipworks.identity.v1.IdentityService/VerifyMfa",
}
PROTECTED = [rpc for rpc in RPCS if not rpc.public]
CLIENTS_REFUSED = [rpc for rpc in RPCS if rpc.clients_refused]

# Unknown field 99 as a group (tags 0x9b 0x06 / 0x9c 0x06) nested 200 deep: no request
# message is recursive, so this is how a payload goes past the decoder's depth limit.
DEEP_GROUPS = b"\x9b\x06" * 200 + b"\x9c\x06" * 200
MALFORMED = {
    "truncated": b"\x0a\x05ab",
    "overlong-varint": b"\x08" + b"\xff" * 11,
    "wire-type-7": b"\x0f",
    "deep-groups": DEEP_GROUPS,
}


# -- calling any method with raw bytes -----------------------------------------------------


def raw_call(
    channel: grpc.Channel, rpc: Rpc, payload: bytes, metadata: Any = ()
) -> grpc.StatusCode:
    """Send ``payload`` as the (only) request message of ``rpc``; the status it ended with."""
    start = getattr(channel, rpc.kind)(rpc.path)  # no serializers: bytes in, bytes out
    request = iter([payload]) if rpc.client_streaming else payload
    try:
        reply = start(request, metadata=metadata, timeout=TIMEOUT)
        if rpc.server_streaming:
            for _ in reply:
                pass
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def refusal(call: Callable[[], Any]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        result = call()
        if isinstance(result, Iterator):
            list(result)
    return raised.value


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def until(probe: Callable[[], T], ok: Callable[[T], bool], timeout: float = 30.0) -> T:
    """Poll ``probe`` until ``ok(result)``; fail with the last result after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = probe()
        except grpc.RpcError as error:
            result = error  # type: ignore[assignment]
        if ok(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last: {result!r}")
        time.sleep(0.1)


# -- what the databases hold ---------------------------------------------------------------


async def _row_counts(urls: dict[str, str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for service, url in urls.items():
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            tables = await connection.fetch(
                "SELECT table_schema, table_name FROM information_schema.tables"
                " WHERE table_type = 'BASE TABLE'"
                " AND table_schema NOT IN ('pg_catalog', 'information_schema')"
            )
            for table in tables:
                name = f'"{table["table_schema"]}"."{table["table_name"]}"'
                counts[f"{service}:{name}"] = await connection.fetchval(
                    f"SELECT count(*) FROM {name}"  # noqa: S608 - names from the catalogue
                )
        finally:
            await connection.close()
    return counts


def settled_row_counts(suite: LocalSuite) -> dict[str, int]:
    """Rows per table of every service, once background work (events) has settled."""
    urls = {name: suite.database_url(name) for name in suite.names if suite.service(name).database}
    previous: dict[str, int] = {}

    def probe() -> dict[str, int]:
        nonlocal previous
        before, previous = previous, asyncio.run(_row_counts(urls))
        return {} if previous != before else previous

    return until(probe, bool)


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_suite_env() -> dict[str, dict[str, str]]:
    # Every method, several times, from one address and a few subjects: room for it all.
    limits = "auth.ip=1000/2000,auth.subject=1000/2000,default.ip=5000/10000"
    return {"gateway": {"PIPWORKS_GATEWAY_RATE_LIMITS": f"{limits},default.subject=5000/10000"}}


@pytest.fixture(scope="module")
def channel(full_suite: LocalSuite) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(full_suite.gateway) as channel:
        yield channel


@pytest.fixture(scope="module")
def portal(channel: grpc.Channel) -> Portal:
    return Portal(channel)


@pytest.fixture(scope="module")
def admin(full_suite: LocalSuite, portal: Portal) -> Session:
    return portal.sign_in(full_suite.admin_email, full_suite.admin_password)


@pytest.fixture(scope="module")
def signing_key(full_suite: LocalSuite) -> TokenAuthority:
    """Identity's own signing key, to mint tokens that only their claims make invalid."""
    secrets = full_suite.secrets
    assert secrets is not None
    kid = secrets.active_signing_key_id
    seed = base64.b64decode(secrets.signing_keys[kid])
    return TokenAuthority(kid=kid, key=Ed25519PrivateKey.from_private_bytes(seed))


@pytest.fixture(scope="module")
def client_a(portal: Portal) -> Session:
    return portal.enable_totp(portal.sign_up())


@pytest.fixture(scope="module")
def client_b(portal: Portal) -> Session:
    return portal.enable_totp(portal.sign_up())


# -- who may call without a token ----------------------------------------------------------


def test_exactly_the_expected_methods_are_public_and_every_method_has_a_policy():
    assert all(rpc.policy is not None for rpc in RPCS), [r.path for r in RPCS if not r.policy]
    assert {rpc.path for rpc in RPCS if rpc.public} == EXPECTED_PUBLIC


def test_protected_methods_refuse_missing_and_invalid_tokens_and_change_nothing(
    full_suite: LocalSuite, channel: grpc.Channel, admin: Session, signing_key: TokenAuthority
):
    claims = {"subject": admin.user_id, "roles": ("admin",), "aal": 2, "mfa": True}
    foreign = TokenAuthority(kid=signing_key.kid)  # another key under identity's key id
    unsigned = signing_key.mint(**claims).split(".")
    none_header = base64.urlsafe_b64encode(
        json.dumps({"alg": "none", "typ": "JWT", "kid": signing_key.kid}).encode()
    ).rstrip(b"=")
    credentials: dict[str, tuple[tuple[str, str], ...]] = {
        "no token": (),
        "garbage token": bearer("not-a-jwt"),
        "garbage jwt": bearer("eyJhbGciOiJFZERTQSJ9.e30.AAAA"),
        "foreign key": bearer(foreign.mint(**claims)),
        "expired": bearer(signing_key.mint(ttl=-3600, **claims)),
        "wrong audience": bearer(signing_key.mint(aud="somebody-else", **claims)),
        "wrong issuer": bearer(signing_key.mint(iss="https://evil.example", **claims)),
        "alg none": bearer(f"{none_header.decode()}.{unsigned[1]}."),
    }
    before = settled_row_counts(full_suite)

    wrong = {
        (rpc.path, name, status.name)
        for rpc in PROTECTED
        for name, metadata in credentials.items()
        if (status := raw_call(channel, rpc, b"", metadata)) != grpc.StatusCode.UNAUTHENTICATED
    }

    assert wrong == set()
    assert settled_row_counts(full_suite) == before


def test_the_genuine_admin_token_and_its_valid_twin_are_accepted(
    channel: grpc.Channel, admin: Session, signing_key: TokenAuthority
):
    """The refusals above are about each token's one defect: without it, the call gets in."""
    me = Portal(channel).identity.GetCurrentUser(
        identity_pb.GetCurrentUserRequest(), metadata=admin.metadata, timeout=TIMEOUT
    )
    assert identity_pb.ROLE_ADMIN in me.user.roles
    twin = signing_key.mint(subject=admin.user_id, roles=("admin",), aal=2, mfa=True)
    templates = kyc_grpc.KycServiceStub(channel).ListTemplates(
        kyc_pb.ListTemplatesRequest(), metadata=bearer(twin), timeout=TIMEOUT
    )
    assert isinstance(templates, kyc_pb.ListTemplatesResponse)


def test_a_client_is_refused_every_staff_method_and_changes_nothing(
    full_suite: LocalSuite, channel: grpc.Channel, client_a: Session
):
    assert (client_a.aal, client_a.roles) == (2, ["client"])
    assert len(CLIENTS_REFUSED) > 40
    before = settled_row_counts(full_suite)

    wrong = {
        (rpc.path, status.name)
        for rpc in CLIENTS_REFUSED
        if (status := raw_call(channel, rpc, b"", client_a.metadata))
        != grpc.StatusCode.PERMISSION_DENIED
    }

    assert wrong == set()
    assert settled_row_counts(full_suite) == before


# -- one client reading another's --------------------------------------------------------


def test_a_client_cannot_read_or_touch_another_clients_trading_accounts(
    channel: grpc.Channel, admin: Session, client_a: Session, client_b: Session
):
    bridge = mtbridge_grpc.MtBridgeServiceStub(channel)
    opened = bridge.OpenAccount(
        mtbridge_pb.OpenAccountRequest(
            user_id=client_b.user_id,
            server="mt5-live",
            group="real\\standard",
            leverage=100,
            currency="USD",
            request_id=str(uuid.uuid4()),
        ),
        metadata=admin.metadata,
        timeout=TIMEOUT,
    )
    theirs = opened.account
    own = bridge.GetAccount(
        mtbridge_pb.GetAccountRequest(server=theirs.server, login=theirs.login),
        metadata=client_b.metadata,
        timeout=TIMEOUT,
    )
    assert own.account.user_id == client_b.user_id  # the owner gets in

    missing = 2_000_000_000
    attempts: dict[str, Callable[[], Any]] = {
        "GetAccount": lambda login: bridge.GetAccount(
            mtbridge_pb.GetAccountRequest(server=theirs.server, login=login),
            metadata=client_a.metadata,
            timeout=TIMEOUT,
        ),
        "ListDeals": lambda login: bridge.ListDeals(
            mtbridge_pb.ListDealsRequest(server=theirs.server, login=login),
            metadata=client_a.metadata,
            timeout=TIMEOUT,
        ),
        "ListPositions": lambda login: bridge.ListPositions(
            mtbridge_pb.ListPositionsRequest(server=theirs.server, login=login),
            metadata=client_a.metadata,
            timeout=TIMEOUT,
        ),
        "ChangeLeverage": lambda login: bridge.ChangeLeverage(
            mtbridge_pb.ChangeLeverageRequest(server=theirs.server, login=login, leverage=500),
            metadata=client_a.metadata,
            timeout=TIMEOUT,
        ),
        "Withdraw": lambda login: bridge.Withdraw(
            mtbridge_pb.WithdrawRequest(
                server=theirs.server,
                login=login,
                amount="10.00",
                idempotency_key=str(uuid.uuid4()),
            ),
            metadata=client_a.metadata,
            timeout=TIMEOUT,
        ),
    }
    for name, attempt in attempts.items():
        for login in (theirs.login, missing):  # someone else's or nobody's: same answer
            error = refusal(lambda attempt=attempt, login=login: attempt(login))
            details = error_details(error)
            assert (error.code(), details.reason) == (
                grpc.StatusCode.PERMISSION_DENIED,
                "ACCOUNT_NOT_OWNED",
            ), (name, login, error.details())

    for by_user in (
        mtbridge_pb.ListAccountsRequest,
        mtbridge_pb.ListDealsRequest,
        mtbridge_pb.ListPositionsRequest,
    ):
        method = getattr(bridge, by_user.__name__.removesuffix("Request"))
        error = refusal(
            lambda method=method, by_user=by_user: method(
                by_user(user_id=client_b.user_id), metadata=client_a.metadata, timeout=TIMEOUT
            )
        )
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, (by_user, error.details())
    mine = bridge.ListAccounts(
        mtbridge_pb.ListAccountsRequest(), metadata=client_a.metadata, timeout=TIMEOUT
    )
    assert theirs.login not in [account.login for account in mine.accounts]


def test_a_client_cannot_download_or_list_another_clients_kyc_documents(
    channel: grpc.Channel, client_a: Session, client_b: Session
):
    kyc = kyc_grpc.KycServiceStub(channel)

    def upload() -> kyc_pb.UploadDocumentResponse:
        parts = [
            kyc_pb.UploadDocumentRequest(
                metadata=kyc_pb.DocumentMetadata(
                    kind="passport",
                    document_number="P7654321",
                    issued_on="2021-01-01",
                    expires_on="2031-01-01",
                )
            ),
            kyc_pb.UploadDocumentRequest(chunk=png_image()),
        ]
        return kyc.UploadDocument(iter(parts), metadata=client_b.metadata, timeout=TIMEOUT)

    # The profile is made from identity's user.registered event: wait for it.
    uploaded = until(upload, lambda r: isinstance(r, kyc_pb.UploadDocumentResponse))
    document_id = uploaded.document.document_id
    owned = list(
        kyc.DownloadDocument(
            kyc_pb.DownloadDocumentRequest(document_id=document_id),
            metadata=client_b.metadata,
            timeout=TIMEOUT,
        )
    )
    assert b"".join(part.chunk for part in owned) == png_image()  # the owner gets it

    for target in (document_id, str(uuid.uuid4())):  # someone else's or nobody's
        error = refusal(
            lambda target=target: kyc.DownloadDocument(
                kyc_pb.DownloadDocumentRequest(document_id=target),
                metadata=client_a.metadata,
                timeout=TIMEOUT,
            )
        )
        assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()
    listed = kyc.ListMyDocuments(
        kyc_pb.ListMyDocumentsRequest(), metadata=client_a.metadata, timeout=TIMEOUT
    )
    assert document_id not in [d.document_id for d in listed.documents]
    error = refusal(
        lambda: kyc.GetApplication(
            kyc_pb.GetApplicationRequest(application_id=str(uuid.uuid4())),
            metadata=client_a.metadata,
            timeout=TIMEOUT,
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED


def _make_ib(portal: Portal, admin: Session, client: Session) -> tuple[Session, str]:
    ib = portal.grant_role(admin, client, identity_pb.ROLE_IB)
    stub = ib_grpc.IbServiceStub(portal.channel)
    mine = until(
        lambda: stub.GetMyPartner(
            ib_pb.GetMyPartnerRequest(), metadata=ib.metadata, timeout=TIMEOUT
        ),
        lambda r: isinstance(r, ib_pb.GetMyPartnerResponse),
    )
    return ib, mine.partner.partner_id


@pytest.fixture(scope="module")
def ib_a(portal: Portal, admin: Session) -> tuple[Session, str]:
    """An IB at aal2 and its partner id."""
    return _make_ib(portal, admin, portal.enable_totp(portal.sign_up()))


def test_an_ib_cannot_read_another_ibs_clients_commissions_or_statements(
    portal: Portal, admin: Session, ib_a: tuple[Session, str]
):
    reader, _ = ib_a
    ib_b, partner_b = _make_ib(portal, admin, portal.enable_totp(portal.sign_up()))
    stub = ib_grpc.IbServiceStub(portal.channel)
    reads = {
        "ListMyClients": ib_pb.ListMyClientsRequest,
        "ListSubPartners": ib_pb.ListSubPartnersRequest,
        "ListCommissions": ib_pb.ListCommissionsRequest,
        "SummarizeCommissions": ib_pb.SummarizeCommissionsRequest,
        "GetLinkStats": ib_pb.GetLinkStatsRequest,
        "ListStatements": ib_pb.ListStatementsRequest,
    }

    def read(name: str, partner_id: str, caller: Session) -> Any:
        request = reads[name](partner_id=partner_id)
        if "dimension" in request.DESCRIPTOR.fields_by_name:
            request.dimension = ib_pb.SUMMARY_DIMENSION_DAY
        return getattr(stub, name)(request, metadata=caller.metadata, timeout=TIMEOUT)

    for name in reads:
        read(name, partner_b, ib_b)  # the owner reads its own
        for partner in (partner_b, str(uuid.uuid4())):  # another IB's or nobody's: same answer
            error = refusal(lambda name=name, partner=partner: read(name, partner, reader))
            assert (error.code(), error_details(error).reason) == (
                grpc.StatusCode.PERMISSION_DENIED,
                "PARTNER_NOT_IN_SUBTREE",
            ), (name, partner, error.details())


# -- bytes that are not a request ------------------------------------------------------------


def _caller_for(
    rpc: Rpc, admin: Session, client: Session, ib: Session
) -> tuple[tuple[str, str], ...]:
    """Metadata of a caller the policy lets through, so the bytes get past authentication."""
    policy = rpc.policy
    assert policy is not None
    if policy.public:
        return ()
    if not policy.roles or "admin" in policy.roles:
        return admin.metadata
    return client.metadata if "client" in policy.roles else ib.metadata


def test_malformed_payloads_to_every_method_are_invalid_argument(
    channel: grpc.Channel, admin: Session, client_a: Session, ib_a: tuple[Session, str]
):
    wrong = {
        (rpc.path, name, status.name)
        for rpc in RPCS
        for name, payload in MALFORMED.items()
        if (status := raw_call(channel, rpc, payload, _caller_for(rpc, admin, client_a, ib_a[0])))
        != grpc.StatusCode.INVALID_ARGUMENT
    }
    assert wrong == set()


def test_an_oversized_message_is_resource_exhausted(
    full_suite: LocalSuite, channel: grpc.Channel, admin: Session
):
    gateway_env = full_suite.environment("gateway")
    limit = int(gateway_env.get("PIPWORKS_MAX_MESSAGE_BYTES", 4 * 1024 * 1024))
    # A valid LoginRequest: field 1 (email) of limit + 1 bytes.
    size = limit + 1
    length = bytearray()
    while True:
        length.append((size & 0x7F) | (0x80 if size > 0x7F else 0))
        size >>= 7
        if not size:
            break
    payload = b"\x0a" + bytes(length) + b"a" * (limit + 1)
    by_path = {rpc.path: rpc for rpc in RPCS}
    for path, metadata in (
        ("/pipworks.identity.v1.IdentityService/Login", ()),
        ("/pipworks.kyc.v1.KycService/PutTemplate", admin.metadata),
    ):
        status = raw_call(channel, by_path[path], payload, metadata)
        assert status == grpc.StatusCode.RESOURCE_EXHAUSTED, path


def test_an_upload_refused_mid_stream_keeps_its_status_through_the_gateway(
    channel: grpc.Channel, client_a: Session
):
    """The gateway is still writing the stream when KYC refuses it: the caller gets KYC's
    status, never the INTERNAL grpc.aio makes of a write into a finished call."""
    kyc = kyc_grpc.KycServiceStub(channel)
    chunks = [kyc_pb.UploadDocumentRequest(chunk=b"\x00" * 4096) for _ in range(3)]
    statuses = {
        refusal(
            lambda: kyc.UploadDocument(iter(chunks), metadata=client_a.metadata, timeout=TIMEOUT)
        ).code()
        for _ in range(100)
    }
    assert statuses == {grpc.StatusCode.INVALID_ARGUMENT}


def test_after_the_attacks_every_service_is_serving_and_answers(
    full_suite: LocalSuite, channel: grpc.Channel, admin: Session
):
    for name in full_suite.names:
        if full_suite.service(name).is_grpc:
            port = int(full_suite.address(name).rpartition(":")[2])
            assert health_status(port) == "SERVING", name
            assert full_suite.is_running(name), name
    me = Portal(channel).identity.GetCurrentUser(
        identity_pb.GetCurrentUserRequest(), metadata=admin.metadata, timeout=TIMEOUT
    )
    assert me.user.user_id == admin.user_id

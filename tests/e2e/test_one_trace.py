"""One trace follows a deal from the trading server to the IB ledger and anti-fraud.

Every process of the suite exports its spans over OTLP to a receiver in this test, as
they would to a collector in production. A client referred by a two-level IB chain
closes a position on the simulator; the closing deal's trace, started by the bridge when
it mirrors the deal, must hold the bridge's publish, the IB consumer's accrual and its
ledger commit, and anti-fraud's evaluation: one trace id across four processes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest

from pipworks_devstack.local_suite import LocalSuite
from pipworks_devstack.portal import Portal
from pipworks_devstack.testing import run_sync
from tests.e2e.broker import build_chain, open_funded_accounts
from tests.e2e.otlp import OtlpReceiver, ReceivedSpan, exporting_to, otlp_receiver
from tests.e2e.probes import consumers

pytestmark = pytest.mark.xdist_group("e2e-one-trace")

DEAL_SUBJECT = "pipworks.mtbridge.v1.deal.executed"


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def full_suite_env(receiver: OtlpReceiver) -> dict[str, dict[str, str]]:
    return {"*": exporting_to(receiver)}


def _deal_root(spans: list[ReceivedSpan], ticket: int) -> ReceivedSpan | None:
    for span in spans:
        if span.name == "mtbridge deal synced" and span.attributes.get("mtbridge.deal") == ticket:
            return span
    return None


def _in_trace(spans: list[ReceivedSpan], trace_id: str) -> list[ReceivedSpan]:
    return [span for span in spans if span.trace_id == trace_id]


def _wait_idle(suite: LocalSuite, timeout: float = 30.0) -> None:
    """Until every JetStream consumer has delivered and seen acknowledged all it holds."""
    deadline = time.monotonic() + timeout
    while not all(c.idle for c in run_sync(consumers(suite.nats.url))):
        assert time.monotonic() < deadline, "consumers never drained"
        time.sleep(0.2)


def _has(spans: list[ReceivedSpan], service: str, name: str) -> bool:
    return any(s.service == service and s.name == name for s in spans)


EXPECTED = (
    ("pipworks-mtbridge", "mtbridge deal synced"),
    ("pipworks-mtbridge", f"{DEAL_SUBJECT} publish"),
    ("pipworks-ib", f"{DEAL_SUBJECT} process"),
    ("pipworks-ib", "ib.commission.accrue"),
    ("pipworks-ib", "ib commit"),
    ("pipworks-antifraud", "antifraud.evaluate"),
)


def test_a_deal_keeps_one_trace_from_the_bridge_to_the_ledger_and_antifraud(
    full_suite: LocalSuite, receiver: OtlpReceiver
):
    with grpc.insecure_channel(full_suite.gateway) as channel:
        portal = Portal(channel)
        admin = portal.sign_in(full_suite.admin_email, full_suite.admin_password)
        _, code = build_chain(portal, admin, depth=2)
        [login] = open_funded_accounts(portal, admin, code, count=1, deposit="5000.00")

    full_suite.sim_control("DELETE", "/sim/activity")  # no ambient deals in between
    opened = full_suite.sim_control(
        "POST", "/sim/positions", {"login": login, "symbol": "EURUSD", "action": 0, "volume": "1"}
    )["answer"]
    # The opening deal goes all the way through first, so the close is delivered alone.
    receiver.wait_for(lambda spans: _deal_root(spans, int(opened["Deal"])) is not None)
    _wait_idle(full_suite)
    closed = full_suite.sim_control("POST", f"/sim/positions/{opened['PositionID']}/close")[
        "answer"
    ]
    ticket = int(closed["Deal"])

    def complete(spans: list[ReceivedSpan]) -> bool:
        root = _deal_root(spans, ticket)
        if root is None:
            return False
        trace = _in_trace(spans, root.trace_id)
        return all(_has(trace, service, name) for service, name in EXPECTED)

    def deal_trace(spans: list[ReceivedSpan]) -> str:
        root = _deal_root(spans, ticket)
        if root is None:
            return f"no bridge span for deal {ticket}"
        return "\n".join(
            f"{s.service} {s.name} {s.span_id}<-{s.parent_span_id}"
            for s in _in_trace(spans, root.trace_id)
        )

    spans = receiver.wait_for(complete, timeout=60, describe=deal_trace)
    root = _deal_root(spans, ticket)
    assert root is not None
    trace = _in_trace(spans, root.trace_id)

    assert {s.service for s in trace} >= {"pipworks-mtbridge", "pipworks-ib", "pipworks-antifraud"}
    # One tree: the bridge's span is the root and every other span hangs off a span of it.
    assert root.parent_span_id == ""
    ids = {s.span_id for s in trace}
    assert all(s.parent_span_id in ids for s in trace if s is not root)
    # Both consumers are children of the publish, which is a child of the bridge's span.
    [publish] = [s for s in trace if s.name == f"{DEAL_SUBJECT} publish"]
    assert publish.parent_span_id == root.span_id
    consumers = [s for s in trace if s.name == f"{DEAL_SUBJECT} process"]
    assert {s.service for s in consumers} == {"pipworks-ib", "pipworks-antifraud"}
    assert all(s.parent_span_id == publish.span_id for s in consumers)
    # Each service's work for the deal nests in its consumer span of this very delivery:
    # the IB's accrual and ledger commit, anti-fraud's evaluation.
    by_service = {s.service: s.span_id for s in consumers}
    for service, name in (
        ("pipworks-ib", "ib.commission.accrue"),
        ("pipworks-ib", "ib commit"),
        ("pipworks-antifraud", "antifraud.evaluate"),
    ):
        assert any(
            s.parent_span_id == by_service[service]
            for s in trace
            if s.service == service and s.name == name
        ), f"{service} {name} is not under its consumer span"
    # No other deal's trace was mixed in.
    assert all(s.attributes.get("mtbridge.deal") in (None, ticket) for s in trace), (
        "spans of another deal share the trace"
    )

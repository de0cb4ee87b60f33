"""A broker set up through the gateway for end-to-end tests: a chain of IBs on a plan
whose pricing a test can recompute, and referred clients with funded live accounts.

Everything goes through the public API as staff (aal2) or as the partner itself, so the
services learn about it from each other's events, as in production.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

import grpc

from pipworks.antifraud.v1 import antifraud_service_pb2 as af_pb
from pipworks.antifraud.v1 import antifraud_service_pb2_grpc as af_grpc
from pipworks.ib.v1 import ib_service_pb2 as ib_pb
from pipworks.ib.v1 import ib_service_pb2_grpc as ib_grpc
from pipworks.identity.v1 import identity_service_pb2 as identity_pb
from pipworks.mtbridge.v1 import mtbridge_service_pb2 as mt_pb
from pipworks.mtbridge.v1 import mtbridge_service_pb2_grpc as mt_grpc
from pipworks_devstack.portal import Portal, Session

SERVER = "mt5-live"
GROUP = "real\\pro"  # charges commission per lot, so the commission-share rule has a base
CURRENCY = "USD"
PLAN_ID = "faults-plan"
CALL_TIMEOUT = 20.0

# The plan, as data the test prices deals with independently of the service.
LEVEL_PERCENTS = tuple(
    Decimal(p) for p in ("40", "20", "10", "8", "6", "5", "4", "3", "2.5", "1.5")
)
SYMBOL_GROUPS = {"All": ("*",), "Metals": ("XAU*", "XAG*")}
PER_LOT_RULES = {"lot-all": ("All", Decimal("7.30")), "lot-metals": ("Metals", Decimal("2.45"))}
COMMISSION_SHARE = ("commission", Decimal("25"))


def plan_terms() -> ib_pb.PlanTerms:
    """Every closing deal qualifies: no minimum lifetime, no cap, percent shares summing
    to 100% over ten levels."""
    rules = [
        ib_pb.Rule(rule_id=rule_id, kind=ib_pb.RULE_KIND_PER_LOT, rate=str(rate), symbol_group=g)
        for rule_id, (g, rate) in PER_LOT_RULES.items()
    ]
    rules.append(
        ib_pb.Rule(
            rule_id=COMMISSION_SHARE[0],
            kind=ib_pb.RULE_KIND_COMMISSION_SHARE,
            rate=str(COMMISSION_SHARE[1]),
        )
    )
    return ib_pb.PlanTerms(
        currency=CURRENCY,
        symbol_groups=[
            ib_pb.SymbolGroup(name=name, patterns=patterns)
            for name, patterns in SYMBOL_GROUPS.items()
        ],
        rules=rules,
        levels=[ib_pb.LevelShare(percent=str(p)) for p in LEVEL_PERCENTS],
        beyond=ib_pb.BEYOND_LAST_LEVEL_NOTHING,
        min_lifetime_seconds=0,
    )


@dataclass(frozen=True)
class Broker:
    """Partner ids from level 1 (the clients' own IB) to the root, and the clients'
    user ids by trading login."""

    chain: tuple[str, ...]
    clients: dict[int, str]


def shadow_restricting_rules(portal: Portal, staff: Session) -> list[str]:
    """Put every anti-fraud rule that restricts clients in shadow mode; their ids.

    A restricted client gets no new deals from the simulator (trading disabled), which
    would make the number of deals depend on what the rules happen to score. Shadow rules
    still evaluate and score every event, which is what the test counts.
    """
    stub = af_grpc.AntifraudServiceStub(portal.channel)
    restricting = {
        af_pb.RULE_ACTION_RESTRICT_TRADING,
        af_pb.RULE_ACTION_RESTRICT_WITHDRAWALS,
        af_pb.RULE_ACTION_RESTRICT_LOGIN,
    }
    changed: list[str] = []
    token = ""
    while True:
        page = stub.ListRules(
            af_pb.ListRulesRequest(page_size=100, page_token=token),
            metadata=staff.metadata,
            timeout=CALL_TIMEOUT,
        )
        for rule in page.rules:
            if rule.mode == af_pb.RULE_MODE_LIVE and restricting & set(rule.actions):
                stub.SetRuleMode(
                    af_pb.SetRuleModeRequest(rule_id=rule.rule_id, mode=af_pb.RULE_MODE_SHADOW),
                    metadata=staff.metadata,
                    timeout=CALL_TIMEOUT,
                )
                changed.append(rule.rule_id)
        token = page.next_page_token
        if not token:
            return changed


def build_chain(portal: Portal, admin: Session, depth: int) -> tuple[tuple[str, ...], str]:
    """A root partner holding the plan and ``depth - 1`` partners below it, each a real
    user; the deepest one's referral code. Returns partner ids level 1 first."""
    ib = ib_grpc.IbServiceStub(portal.channel)
    ib.CreatePlan(
        ib_pb.CreatePlanRequest(plan_id=PLAN_ID, name="Fault injection", terms=plan_terms()),
        metadata=admin.metadata,
        timeout=CALL_TIMEOUT,
    )
    top_down: list[str] = []
    user: Session | None = None
    for level in range(depth):
        user = portal.sign_up()
        made = ib.CreatePartner(
            ib_pb.CreatePartnerRequest(
                user_id=user.user_id,
                parent_partner_id=top_down[-1] if top_down else "",
                plan_id=PLAN_ID if level == 0 else "",
            ),
            metadata=admin.metadata,
            timeout=CALL_TIMEOUT,
        )
        top_down.append(made.partner.partner_id)
    assert user is not None
    partner = portal.grant_role(admin, user, identity_pb.ROLE_IB)
    link = ib.CreateReferralLink(
        ib_pb.CreateReferralLinkRequest(campaign="faults"),
        metadata=partner.metadata,
        timeout=CALL_TIMEOUT,
    )
    return tuple(reversed(top_down)), link.link.code


def open_funded_accounts(
    portal: Portal, admin: Session, code: str, count: int, deposit: str
) -> dict[int, str]:
    """``count`` clients registered with ``code``, each with a live account opened and
    funded by staff; user id by login."""
    bridge = mt_grpc.MtBridgeServiceStub(portal.channel)
    clients: dict[int, str] = {}
    for _ in range(count):
        client = portal.sign_up(referral_code=code)
        opened = bridge.OpenAccount(
            mt_pb.OpenAccountRequest(
                user_id=client.user_id,
                server=SERVER,
                group=GROUP,
                leverage=100,
                currency=CURRENCY,
                request_id=str(uuid.uuid4()),
            ),
            metadata=admin.metadata,
            timeout=CALL_TIMEOUT,
        )
        login = opened.account.login
        bridge.Deposit(
            mt_pb.DepositRequest(
                server=SERVER, login=login, amount=deposit, idempotency_key=str(uuid.uuid4())
            ),
            metadata=admin.metadata,
            timeout=CALL_TIMEOUT,
        )
        clients[login] = client.user_id
    return clients


def set_up_broker(gateway: str, admin_email: str, admin_password: str) -> Broker:
    """The chain, the shadowed rules and the clients, as the broker's staff would."""
    with grpc.insecure_channel(gateway) as channel:
        portal = Portal(channel)
        admin = portal.sign_in(admin_email, admin_password)
        shadow_restricting_rules(portal, admin)
        chain, code = build_chain(portal, admin, depth=len(LEVEL_PERCENTS))
        clients = open_funded_accounts(portal, admin, code, count=24, deposit="9000.00")
    return Broker(chain=chain, clients=clients)

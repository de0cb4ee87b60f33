"""SQL of the ib service. Set-based where it matters: the chain of many clients comes
from the closure table in one query, ledger rows go in with one ``INSERT ... SELECT FROM
unnest(...) ON CONFLICT DO NOTHING``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from pipworks_ib.adapters.plan_codec import terms_from_json, terms_to_json
from pipworks_ib.domain.engine import ChainLink, Opening
from pipworks_ib.domain.plans import PlanTerms, PlanVersion
from pipworks_platform.db import driver_connection

Row = Mapping[str, Any]


async def fetch_all(session: AsyncSession, sql: str, **params: Any) -> list[Row]:
    return list((await session.execute(sa.text(sql), params)).mappings().all())


async def fetch_one(session: AsyncSession, sql: str, **params: Any) -> Row | None:
    return (await session.execute(sa.text(sql), params)).mappings().first()


async def execute(session: AsyncSession, sql: str, **params: Any) -> int:
    result = await session.execute(sa.text(sql), params)
    return result.rowcount  # type: ignore[attr-defined,no-any-return]


# -- plans ------------------------------------------------------------------------------


async def load_plan_versions(
    session: AsyncSession, plan_ids: Sequence[str]
) -> dict[str, list[PlanVersion]]:
    rows = await fetch_all(
        session,
        "SELECT plan_id, version, effective_from, terms FROM plan_versions"
        " WHERE plan_id = ANY(CAST(:ids AS text[])) ORDER BY plan_id, version",
        ids=list(plan_ids),
    )
    found: dict[str, list[PlanVersion]] = {}
    for row in rows:
        found.setdefault(row["plan_id"], []).append(_plan_version(row))
    return found


def _plan_version(row: Row) -> PlanVersion:
    return PlanVersion(
        row["plan_id"], row["version"], row["effective_from"], terms_from_json(row["terms"])
    )


async def plan(session: AsyncSession, plan_id: str, *, lock: bool = False) -> Row | None:
    suffix = " FOR UPDATE" if lock else ""
    return await fetch_one(session, "SELECT * FROM plans WHERE id = :id" + suffix, id=plan_id)  # noqa: S608 - fixed SQL fragments


async def insert_plan(session: AsyncSession, plan_id: str, name: str, now: datetime) -> bool:
    return (
        await execute(
            session,
            "INSERT INTO plans (id, name, revision, created_at) VALUES (:id, :name, 0, :now)"
            " ON CONFLICT DO NOTHING",
            id=plan_id,
            name=name,
            now=now,
        )
        == 1
    )


async def insert_plan_version(
    session: AsyncSession,
    plan_id: str,
    version: int,
    effective_from: datetime,
    terms: PlanTerms,
    now: datetime,
    actor: str,
) -> None:
    await execute(
        session,
        "INSERT INTO plan_versions (plan_id, version, effective_from, currency, terms,"
        " created_at, created_by) VALUES (:plan, :version, :eff, :currency,"
        " CAST(:terms AS jsonb), :now, :actor)",
        plan=plan_id,
        version=version,
        eff=effective_from,
        currency=terms.currency,
        terms=json.dumps(terms_to_json(terms)),
        now=now,
        actor=actor,
    )
    await execute(session, "UPDATE plans SET revision = revision + 1 WHERE id = :id", id=plan_id)


async def plan_history(session: AsyncSession, plan_id: str) -> list[tuple[PlanVersion, datetime]]:
    """The plan's versions in order, each with when it was created."""
    rows = await fetch_all(
        session,
        "SELECT * FROM plan_versions WHERE plan_id = :id ORDER BY version",
        id=plan_id,
    )
    return [(_plan_version(r), r["created_at"]) for r in rows]


# -- partners and the tree --------------------------------------------------------------

PARTNER_COLUMNS = (
    "p.id, p.user_id, p.parent_id, p.status, p.plan_id, p.created_at,"
    " (SELECT max(t.depth) FROM partner_tree t WHERE t.descendant_id = p.id) AS depth"
)


async def partner(
    session: AsyncSession, partner_id: uuid.UUID, *, lock: bool = False
) -> Row | None:
    suffix = " FOR UPDATE" if lock else ""
    return await fetch_one(
        session,
        f"SELECT {PARTNER_COLUMNS} FROM partners p WHERE p.id = :id" + suffix,  # noqa: S608 - fixed SQL fragments
        id=partner_id,
    )


async def partner_of_user(session: AsyncSession, user_id: uuid.UUID) -> Row | None:
    return await fetch_one(
        session,
        f"SELECT {PARTNER_COLUMNS} FROM partners p WHERE p.user_id = :u",  # noqa: S608 - fixed SQL fragments
        u=user_id,
    )


async def insert_partner(
    session: AsyncSession,
    partner_id: uuid.UUID,
    user_id: uuid.UUID,
    parent_id: uuid.UUID | None,
    status: str,
    plan_id: str | None,
    now: datetime,
) -> bool:
    inserted = await execute(
        session,
        "INSERT INTO partners (id, user_id, parent_id, status, plan_id, created_at)"
        " VALUES (:id, :u, :parent, :status, :plan, :now) ON CONFLICT (user_id) DO NOTHING",
        id=partner_id,
        u=user_id,
        parent=parent_id,
        status=status,
        plan=plan_id,
        now=now,
    )
    if inserted != 1:
        return False
    await execute(
        session,
        "INSERT INTO partner_tree (ancestor_id, descendant_id, depth)"
        " SELECT ancestor_id, CAST(:id AS uuid), depth + 1 FROM partner_tree"
        " WHERE descendant_id = :parent"
        " UNION ALL SELECT CAST(:id AS uuid), CAST(:id AS uuid), 0",
        id=partner_id,
        parent=parent_id,
    )
    return True


async def is_descendant(session: AsyncSession, ancestor: uuid.UUID, descendant: uuid.UUID) -> bool:
    row = await fetch_one(
        session,
        "SELECT 1 FROM partner_tree WHERE ancestor_id = :a AND descendant_id = :d",
        a=ancestor,
        d=descendant,
    )
    return row is not None


async def subtree(session: AsyncSession, partner_id: uuid.UUID) -> set[uuid.UUID]:
    rows = await fetch_all(
        session, "SELECT descendant_id FROM partner_tree WHERE ancestor_id = :id", id=partner_id
    )
    return {r["descendant_id"] for r in rows}


async def move_subtree(
    session: AsyncSession, partner_id: uuid.UUID, new_parent: uuid.UUID | None
) -> None:
    """Re-hang a subtree in three set-based statements."""
    await execute(
        session,
        "DELETE FROM partner_tree WHERE descendant_id IN"
        " (SELECT descendant_id FROM partner_tree WHERE ancestor_id = :id)"
        " AND ancestor_id NOT IN"
        " (SELECT descendant_id FROM partner_tree WHERE ancestor_id = :id)",
        id=partner_id,
    )
    if new_parent is not None:
        await execute(
            session,
            "INSERT INTO partner_tree (ancestor_id, descendant_id, depth)"
            " SELECT up.ancestor_id, down.descendant_id, up.depth + down.depth + 1"
            " FROM partner_tree up CROSS JOIN partner_tree down"
            " WHERE up.descendant_id = :parent AND down.ancestor_id = :id",
            parent=new_parent,
            id=partner_id,
        )
    await execute(
        session,
        "UPDATE partners SET parent_id = :parent WHERE id = :id",
        parent=new_parent,
        id=partner_id,
    )


async def set_partner(session: AsyncSession, partner_id: uuid.UUID, **values: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values)
    await execute(session, f"UPDATE partners SET {sets} WHERE id = :id", id=partner_id, **values)  # noqa: S608 - column names are code


# -- links, clicks, attribution, logins ------------------------------------------------


async def insert_link(
    session: AsyncSession, code: str, partner_id: uuid.UUID, campaign: str, now: datetime
) -> bool:
    return (
        await execute(
            session,
            "INSERT INTO referral_links (code, partner_id, campaign, created_at)"
            " VALUES (:code, :p, :c, :now) ON CONFLICT DO NOTHING",
            code=code,
            p=partner_id,
            c=campaign,
            now=now,
        )
        == 1
    )


async def links(session: AsyncSession, partner_id: uuid.UUID) -> list[Row]:
    return await fetch_all(
        session,
        "SELECT * FROM referral_links WHERE partner_id = :p ORDER BY created_at, code",
        p=partner_id,
    )


async def link(session: AsyncSession, code: str) -> Row | None:
    return await fetch_one(session, "SELECT * FROM referral_links WHERE code = :c", c=code)


async def record_click(session: AsyncSession, code: str, day: Any) -> None:
    await execute(
        session,
        "INSERT INTO link_clicks (code, day, clicks) VALUES (:c, :d, 1)"
        " ON CONFLICT (code, day) DO UPDATE SET clicks = link_clicks.clicks + 1",
        c=code,
        d=day,
    )


async def link_stats(
    session: AsyncSession, partner_id: uuid.UUID, active_since: datetime, funded_minimum: Decimal
) -> list[Row]:
    return await fetch_all(
        session,
        """
        SELECT l.code, l.campaign, l.created_at,
          (SELECT coalesce(sum(clicks), 0) FROM link_clicks c WHERE c.code = l.code) AS clicks,
          (SELECT count(*) FROM attributions a WHERE a.referral_code = l.code) AS registrations,
          (SELECT count(*) FROM attributions a WHERE a.referral_code = l.code AND EXISTS
             (SELECT 1 FROM client_deposits d WHERE d.client_user_id = a.client_user_id
              AND d.amount >= :funded)) AS funded,
          (SELECT count(*) FROM attributions a WHERE a.referral_code = l.code AND EXISTS
             (SELECT 1 FROM client_deals d WHERE d.client_user_id = a.client_user_id
              AND d.executed_at >= :since)) AS active_traders
        FROM referral_links l WHERE l.partner_id = :p ORDER BY l.created_at, l.code
        """,
        p=partner_id,
        since=active_since,
        funded=funded_minimum,
    )


async def attribution(
    session: AsyncSession, client: uuid.UUID, *, lock: bool = False
) -> Row | None:
    suffix = " FOR UPDATE" if lock else ""
    return await fetch_one(
        session,
        "SELECT * FROM attributions WHERE client_user_id = :c" + suffix,  # noqa: S608 - fixed SQL fragments
        c=client,
    )


async def attribute(
    session: AsyncSession,
    client: uuid.UUID,
    partner_id: uuid.UUID,
    code: str | None,
    campaign: str,
    manual: bool,
    now: datetime,
) -> None:
    await execute(
        session,
        "INSERT INTO attributions (client_user_id, partner_id, referral_code, campaign, manual,"
        " attributed_at) VALUES (:c, :p, :code, :campaign, :manual, :now)"
        " ON CONFLICT (client_user_id) DO UPDATE SET partner_id = EXCLUDED.partner_id,"
        " manual = EXCLUDED.manual, attributed_at = EXCLUDED.attributed_at",
        c=client,
        p=partner_id,
        code=code,
        campaign=campaign,
        manual=manual,
        now=now,
    )


async def record_login(
    session: AsyncSession, server: str, login: int, user: uuid.UUID, currency: str, at: datetime
) -> None:
    await execute(
        session,
        "INSERT INTO trading_logins (server, login, user_id, currency, opened_at)"
        " VALUES (:s, :l, :u, :c, :at) ON CONFLICT DO NOTHING",
        s=server,
        l=login,
        u=user,
        c=currency,
        at=at,
    )


async def trading_login(session: AsyncSession, server: str, login: int) -> Row | None:
    return await fetch_one(
        session, "SELECT * FROM trading_logins WHERE server = :s AND login = :l", s=server, l=login
    )


# -- commission inputs ------------------------------------------------------------------


_CHAINS = """
    WITH anchors AS (
      SELECT c.client, coalesce(own.id, a.partner_id) AS anchor
      FROM unnest($1::uuid[]) AS c(client)
      LEFT JOIN partners own ON own.user_id = c.client
      LEFT JOIN attributions a ON a.client_user_id = c.client
    )
    SELECT an.client, t.depth, t.ancestor_id, p.user_id, p.plan_id, pl.revision
    FROM anchors an
    JOIN partner_tree t ON t.descendant_id = an.anchor
    JOIN partners p ON p.id = t.ancestor_id
    LEFT JOIN plans pl ON pl.id = p.plan_id
    ORDER BY an.client, t.depth
"""


async def chains(
    session: AsyncSession, clients: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[list[ChainLink], dict[str, int]]]:
    """Each client's chain (level 1 first) and the plans on it with their revisions.

    A partner's own trades start the chain at the partner itself; a client's at the
    partner it is attributed to."""
    # The hot path of every deal batch: asyncpg records, not ORM rows.
    conn = await driver_connection(session)
    rows = await conn.fetch(_CHAINS, list(set(clients)))
    found: dict[uuid.UUID, tuple[list[ChainLink], dict[str, int]]] = {}
    for row in rows:
        chain, plans = found.setdefault(row["client"], ([], {}))
        chain.append(ChainLink(str(row["ancestor_id"]), str(row["user_id"]), row["plan_id"]))
        if row["plan_id"] is not None:
            plans[row["plan_id"]] = row["revision"]
    return found


async def plan_revisions(session: AsyncSession, plan_ids: Iterable[str]) -> dict[str, int]:
    rows = await fetch_all(
        session,
        "SELECT id, revision FROM plans WHERE id = ANY(CAST(:ids AS text[]))",
        ids=list(set(plan_ids)),
    )
    return {r["id"]: r["revision"] for r in rows}


async def open_holds(
    session: AsyncSession, clients: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[Row]]:
    rows = await fetch_all(
        session,
        "SELECT id, client_user_id, opened_at, lifted_at FROM holds"
        " WHERE client_user_id = ANY(CAST(:c AS uuid[])) AND resolution IS NULL",
        c=list(set(clients)),
    )
    found: dict[uuid.UUID, list[Row]] = {}
    for row in rows:
        found.setdefault(row["client_user_id"], []).append(row)
    return found


async def openings(
    session: AsyncSession, keys: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], Opening]:
    pairs = list(set(keys))
    if not pairs:
        return {}
    rows = await fetch_all(
        session,
        "SELECT p.server, p.position_id, p.opened_at, p.volume, p.commission FROM positions p"
        " JOIN unnest(CAST(:s AS text[]), CAST(:i AS bigint[])) AS k(server, position_id)"
        " USING (server, position_id)",
        s=[p[0] for p in pairs],
        i=[p[1] for p in pairs],
    )
    return {
        (r["server"], r["position_id"]): Opening(r["opened_at"], r["volume"], r["commission"])
        for r in rows
    }


async def save_openings(session: AsyncSession, found: Mapping[tuple[str, int], Opening]) -> None:
    if not found:
        return
    keys = list(found)
    await execute(
        session,
        "INSERT INTO positions (server, position_id, opened_at, volume, commission)"
        " SELECT * FROM unnest(CAST(:s AS text[]), CAST(:i AS bigint[]),"
        " CAST(:t AS timestamptz[]), CAST(:v AS numeric[]), CAST(:c AS numeric[]))"
        " ON CONFLICT (server, position_id) DO UPDATE SET opened_at = EXCLUDED.opened_at,"
        " volume = EXCLUDED.volume, commission = EXCLUDED.commission",
        s=[k[0] for k in keys],
        i=[k[1] for k in keys],
        t=[found[k].opened_at for k in keys],
        v=[found[k].volume for k in keys],
        c=[found[k].commission for k in keys],
    )


async def save_client_deals(
    session: AsyncSession, deals: Sequence[Mapping[str, Any]]
) -> set[tuple[str, int]]:
    """Record deals; the (server, ticket) of those not seen before."""
    if not deals:
        return set()
    rows = await fetch_all(
        session,
        "INSERT INTO client_deals (server, ticket, client_user_id, symbol, entry, volume,"
        " result, currency, executed_at)"
        " SELECT * FROM unnest(CAST(:s AS text[]), CAST(:t AS bigint[]), CAST(:u AS uuid[]),"
        " CAST(:sym AS text[]), CAST(:e AS smallint[]), CAST(:v AS numeric[]),"
        " CAST(:r AS numeric[]), CAST(:c AS text[]), CAST(:at AS timestamptz[]))"
        " ON CONFLICT DO NOTHING RETURNING server, ticket",
        s=[d["server"] for d in deals],
        t=[d["ticket"] for d in deals],
        u=[d["client"] for d in deals],
        sym=[d["symbol"] for d in deals],
        e=[d["entry"] for d in deals],
        v=[d["volume"] for d in deals],
        r=[d["result"] for d in deals],
        c=[d["currency"] for d in deals],
        at=[d["executed_at"] for d in deals],
    )
    return {(r["server"], r["ticket"]) for r in rows}


async def save_deposit(
    session: AsyncSession,
    server: str,
    ticket: int,
    client: uuid.UUID,
    amount: Decimal,
    currency: str,
    at: datetime,
) -> bool:
    return (
        await execute(
            session,
            "INSERT INTO client_deposits (server, ticket, client_user_id, amount, currency,"
            " executed_at) VALUES (:s, :t, :u, :a, :c, :at) ON CONFLICT DO NOTHING",
            s=server,
            t=ticket,
            u=client,
            a=amount,
            c=currency,
            at=at,
        )
        == 1
    )


# -- the ledger -------------------------------------------------------------------------

LEDGER_FIELDS = (
    ("id", "uuid"),
    ("source_key", "text"),
    ("partner_id", "uuid"),
    ("rule_id", "text"),
    ("entry_kind", "text"),
    ("level", "integer"),
    ("client_user_id", "uuid"),
    ("server", "text"),
    ("deal", "bigint"),
    ("symbol", "text"),
    ("rule_kind", "text"),
    ("plan_id", "text"),
    ("plan_version", "integer"),
    ("base", "numeric"),
    ("rate", "numeric"),
    ("amount", "numeric"),
    ("currency", "text"),
    ("hold_id", "uuid"),
    ("reverses", "uuid"),
    ("explanation", "jsonb"),
    ("occurred_at", "timestamptz"),
    ("recorded_at", "timestamptz"),
)
_COLUMNS = ", ".join(name for name, _ in LEDGER_FIELDS)
# The rows travel as one JSON document: PostgreSQL parses it in C, and the driver encodes
# one text parameter instead of thousands of array elements.
_LEDGER_INSERT = (
    f"INSERT INTO ledger ({_COLUMNS}) SELECT {_COLUMNS}"  # noqa: S608 - column names are code
    " FROM jsonb_to_recordset($1::jsonb) AS u("
    + ", ".join(f"{name} {kind}" for name, kind in LEDGER_FIELDS)
    + ") ON CONFLICT ON CONSTRAINT uq_ledger_source DO NOTHING RETURNING id"
)


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


TEXT_FIELDS = frozenset(
    {
        "id",
        "partner_id",
        "client_user_id",
        "base",
        "rate",
        "amount",
        "hold_id",
        "reverses",
        "occurred_at",
        "recorded_at",
    }
)


def json_ready(row: Mapping[str, Any]) -> dict[str, Any]:
    """A ledger row as read from the database, with ids, amounts and times as text."""
    return {
        name: _text(row[name]) if name in TEXT_FIELDS else row[name] for name, _ in LEDGER_FIELDS
    }


async def append_ledger(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> set[str]:
    """Insert JSON-ready rows (see :func:`json_ready`); the ids actually written (a row
    already present is skipped)."""
    if not rows:
        return set()
    payload = json.dumps(rows, default=str)
    conn = await driver_connection(session)
    return {str(row[0]) for row in await conn.fetch(_LEDGER_INSERT, payload)}


async def append_facts(
    session: AsyncSession, items: Sequence[tuple[str, Mapping[str, Any]]], now: datetime
) -> None:
    if not items:
        return
    payload = json.dumps([{"source_key": k, "facts": f} for k, f in items], default=str)
    await session.execute(
        sa.text(
            "INSERT INTO ledger_facts (source_key, facts, recorded_at)"
            " SELECT f.source_key, f.facts, :now"
            " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS f(source_key text, facts jsonb)"
            " ON CONFLICT DO NOTHING"
        ),
        {"rows": payload, "now": now},
    )


# -- holds, reversals ---------------------------------------------------------------------


async def insert_hold(
    session: AsyncSession,
    hold_id: uuid.UUID,
    client: uuid.UUID,
    case_id: str,
    restriction_id: str,
    at: datetime,
) -> None:
    await execute(
        session,
        "INSERT INTO holds (id, client_user_id, case_id, restriction_id, opened_at)"
        " VALUES (:id, :c, :case, :r, :at) ON CONFLICT DO NOTHING",
        id=hold_id,
        c=client,
        case=case_id,
        r=restriction_id,
        at=at,
    )


async def lift_holds(
    session: AsyncSession, client: uuid.UUID, restriction_id: str, at: datetime
) -> list[Row]:
    """Stop holding new activity; the holds lifted, with their case ids."""
    return await fetch_all(
        session,
        "UPDATE holds SET lifted_at = :at WHERE client_user_id = :c AND lifted_at IS NULL"
        " AND resolution IS NULL AND (:r = '' OR restriction_id = :r) RETURNING id, case_id",
        c=client,
        r=restriction_id,
        at=at,
    )


async def resolve_holds(
    session: AsyncSession,
    client: uuid.UUID,
    case_id: str,
    resolution: str,
    at: datetime,
    *,
    hold_ids: Sequence[uuid.UUID] | None = None,
) -> list[uuid.UUID]:
    """Close unresolved holds of the client (of the case, when the holds name one)."""
    rows = await fetch_all(
        session,
        "UPDATE holds SET resolution = :res, resolved_at = :at,"
        " lifted_at = coalesce(lifted_at, :at)"
        " WHERE client_user_id = :c AND resolution IS NULL"
        " AND (CAST(:ids AS uuid[]) IS NULL OR id = ANY(CAST(:ids AS uuid[])))"
        " AND (:case = '' OR case_id = '' OR case_id = :case) RETURNING id",
        res=resolution,
        at=at,
        c=client,
        case=case_id,
        ids=None if hold_ids is None else list(hold_ids),
    )
    return [r["id"] for r in rows]


async def held_accruals(session: AsyncSession, hold_ids: Sequence[uuid.UUID]) -> list[Row]:
    return await fetch_all(
        session,
        "SELECT * FROM ledger WHERE hold_id = ANY(CAST(:h AS uuid[]))"
        " AND entry_kind = 'accrual' ORDER BY occurred_at, id",
        h=list(hold_ids),
    )


# -- statements and payouts -------------------------------------------------------------

_PAYABLE = (
    "(l.hold_id IS NULL OR EXISTS (SELECT 1 FROM holds h WHERE h.id = l.hold_id"
    " AND h.resolution = 'released'))"
)


async def create_statements(
    session: AsyncSession,
    start: datetime,
    end: datetime,
    now: datetime,
    actor: str,
    partner_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Statements for every partner (or one) with payable rows before ``end`` that no
    statement holds yet, one per currency, when they sum to more than zero (otherwise the
    rows wait for a later statement); one set-based statement. Returns their ids."""
    rows = await fetch_all(
        session,
        f"""
        WITH eligible AS (
          SELECT l.id, l.partner_id, l.currency, l.amount FROM ledger l
          WHERE l.occurred_at < :end AND {_PAYABLE}
            AND (CAST(:p AS uuid) IS NULL OR l.partner_id = CAST(:p AS uuid))
            AND NOT EXISTS (SELECT 1 FROM statement_items si WHERE si.ledger_id = l.id)
        ), made AS (
          INSERT INTO statements (id, partner_id, period_start, period_end, currency, total,
                                  entries, status, created_at, created_by)
          SELECT gen_random_uuid(), partner_id, :start, :end, currency, sum(amount), count(*),
                 'draft', :now, :actor
          FROM eligible GROUP BY partner_id, currency HAVING sum(amount) > 0
          ON CONFLICT (partner_id, period_start, period_end, currency) DO NOTHING
          RETURNING id, partner_id, currency
        ), items AS (
          INSERT INTO statement_items (ledger_id, statement_id)
          SELECT e.id, m.id FROM eligible e
          JOIN made m ON m.partner_id = e.partner_id AND m.currency = e.currency
          RETURNING statement_id
        )
        SELECT m.id, (SELECT count(*) FROM items) AS items FROM made m
        """,  # noqa: S608 - a fixed SQL fragment
        start=start,
        end=end,
        now=now,
        actor=actor,
        p=partner_id,
    )
    return [r["id"] for r in rows]


async def statement(
    session: AsyncSession, statement_id: uuid.UUID, *, lock: bool = False
) -> Row | None:
    sql = (
        "SELECT * FROM statements WHERE id = :id FOR UPDATE"
        if lock
        else "SELECT * FROM statements WHERE id = :id"
    )
    return await fetch_one(session, sql, id=statement_id)


async def statement_for_period(
    session: AsyncSession, partner_id: uuid.UUID, start: datetime, end: datetime
) -> list[Row]:
    return await fetch_all(
        session,
        "SELECT * FROM statements WHERE partner_id = :p AND period_start = :s"
        " AND period_end = :e ORDER BY currency",
        p=partner_id,
        s=start,
        e=end,
    )


_STATEMENT_LINES = (
    ("by_client", "CAST(l.client_user_id AS text)"),
    ("by_symbol", "l.symbol"),
    ("by_level", "CAST(l.level AS text)"),
)


async def statement_lines(
    session: AsyncSession, statement_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, list[Row]]]:
    """Each statement's totals by client, by symbol and by level: three queries however
    many statements are asked for."""
    ids = list(statement_ids)
    found: dict[uuid.UUID, dict[str, list[Row]]] = {
        sid: {name: [] for name, _ in _STATEMENT_LINES} for sid in ids
    }
    if not ids:
        return found
    for name, column in _STATEMENT_LINES:
        rows = await fetch_all(
            session,
            f"SELECT si.statement_id, {column} AS key, sum(l.amount) AS amount,"  # noqa: S608
            " count(*) AS entries, min(l.currency) AS currency FROM statement_items si"
            " JOIN ledger l ON l.id = si.ledger_id"
            " WHERE si.statement_id = ANY(CAST(:s AS uuid[]))"
            " GROUP BY 1, 2 ORDER BY 1, 2",
            s=ids,
        )
        for row in rows:
            found[row["statement_id"]][name].append(row)
    return found


async def approve_statement(
    session: AsyncSession,
    statement_id: uuid.UUID,
    payout_id: uuid.UUID,
    key: str,
    server: str,
    login: int,
    now: datetime,
    actor: str,
) -> None:
    await execute(
        session,
        "UPDATE statements SET status = 'approved', payout_id = :payout, approval_key = :key,"
        " server = :server, login = :login, approved_at = :now, approved_by = :actor"
        " WHERE id = :id AND status = 'draft'",
        payout=payout_id,
        key=key,
        server=server,
        login=login,
        now=now,
        actor=actor,
        id=statement_id,
    )


async def mark_paid(session: AsyncSession, payout_id: uuid.UUID, at: datetime) -> bool:
    return (
        await execute(
            session,
            "UPDATE statements SET status = 'paid', paid_at = :at"
            " WHERE payout_id = :p AND status = 'approved'",
            p=payout_id,
            at=at,
        )
        == 1
    )

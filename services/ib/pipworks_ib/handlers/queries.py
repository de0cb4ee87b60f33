"""Reads for the IB portal and staff: clients, sub-IBs, ledger rows, summaries,
statements and link statistics. Callers are scoped before anything is read."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pipworks_ib.adapters import store
from pipworks_ib.handlers.context import Caller, Deps, own_partner, scoped_partner
from pipworks_platform import page_tokens
from pipworks_platform.errors import InvalidArgument

DEFAULT_PAGE = 50
MAX_PAGE = 500
Row = Any
FAR_PAST = datetime(1970, 1, 1).astimezone()


def page_of(size: int, token: str, query: str) -> tuple[int, dict[str, Any] | None]:
    if size < 0:
        raise InvalidArgument.for_field("page.page_size", "must not be negative")
    size = min(size or DEFAULT_PAGE, MAX_PAGE)
    if not token:
        return size, None
    try:
        return size, page_tokens.decode(token, query)
    except page_tokens.BadPageToken as exc:
        raise InvalidArgument.for_field("page.page_token", str(exc)) from None


def _cursor_at(cursor: dict[str, Any] | None) -> datetime | None:
    return datetime.fromisoformat(cursor["at"]) if cursor else None


def _cursor_id(cursor: dict[str, Any] | None) -> uuid.UUID | None:
    return uuid.UUID(cursor["id"]) if cursor else None


def next_page(
    rows: list[Row], size: int, query: str, position: Callable[[Row], dict[str, Any]]
) -> tuple[list[Row], str]:
    """A page fetched with ``LIMIT size + 1``: its first ``size`` rows, and a token for the
    position after the last of them when there is more."""
    if len(rows) <= size:
        return rows, ""
    rows = rows[:size]
    return rows, page_tokens.encode(position(rows[-1]), query)


def _window(deps: Deps, start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """An open-ended period: from the beginning of time, up to tomorrow."""
    return start or FAR_PAST, end or deps.clock() + timedelta(days=1)


async def link_stats(deps: Deps, caller: Caller, partner: str) -> list[Row]:
    async with deps.uow() as uow:
        partner_id = await scoped_partner(uow.session, caller, partner)
        since = deps.clock() - timedelta(days=deps.settings.ib_active_trader_days)
        return await store.link_stats(
            uow.session, partner_id, since, deps.settings.ib_funded_minimum
        )


async def my_clients(
    deps: Deps, caller: Caller, partner: str, size: int, token: str
) -> tuple[list[Row], str]:
    async with deps.uow() as uow:
        partner_id = await scoped_partner(uow.session, caller, partner)
        query = page_tokens.fingerprint("clients", partner_id)
        size, cursor = page_of(size, token, query)
        rows = await store.fetch_all(
            uow.session,
            """
            SELECT a.client_user_id, a.attributed_at, a.referral_code,
              (SELECT coalesce(sum(d.volume), 0) FROM client_deals d
                 WHERE d.client_user_id = a.client_user_id AND d.entry <> 0) AS volume,
              (SELECT count(*) FROM client_deals d
                 WHERE d.client_user_id = a.client_user_id) AS deals,
              (SELECT coalesce(sum(l.amount), 0) FROM ledger l
                 WHERE l.partner_id = :p AND l.client_user_id = a.client_user_id) AS commission
            FROM attributions a WHERE a.partner_id = :p
              AND (CAST(:at AS timestamptz) IS NULL
                   OR (a.attributed_at, a.client_user_id) > (:at, CAST(:after AS uuid)))
            ORDER BY a.attributed_at, a.client_user_id LIMIT :n
            """,
            p=partner_id,
            at=_cursor_at(cursor),
            after=_cursor_id(cursor),
            n=size + 1,
        )
        return next_page(
            rows,
            size,
            query,
            lambda last: {
                "at": last["attributed_at"].isoformat(),
                "id": str(last["client_user_id"]),
            },
        )


async def sub_partners(
    deps: Deps, caller: Caller, partner: str, size: int, token: str
) -> tuple[list[Row], str]:
    async with deps.uow() as uow:
        viewer = await scoped_partner(uow.session, caller, partner)
        query = page_tokens.fingerprint("subpartners", viewer)
        size, cursor = page_of(size, token, query)
        rows = await store.fetch_all(
            uow.session,
            f"""
            SELECT {store.PARTNER_COLUMNS}, t.depth AS relative_depth,
              (SELECT count(*) FROM attributions a WHERE a.partner_id = p.id) AS clients,
              (SELECT coalesce(sum(l.amount), 0) FROM ledger l
                 WHERE l.partner_id = p.id) AS commission,
              (SELECT coalesce(sum(l.amount), 0) FROM ledger l
                 JOIN attributions a ON a.client_user_id = l.client_user_id
                 WHERE l.partner_id = :v AND a.partner_id = p.id) AS viewer_commission
            FROM partner_tree t JOIN partners p ON p.id = t.descendant_id
            WHERE t.ancestor_id = :v AND t.depth > 0
              AND (CAST(:d AS integer) IS NULL
                   OR (t.depth, p.id) > (CAST(:d AS integer), CAST(:after AS uuid)))
            ORDER BY t.depth, p.id LIMIT :n
            """,  # noqa: S608 - a fixed SQL fragment
            v=viewer,
            d=cursor["d"] if cursor else None,
            after=_cursor_id(cursor),
            n=size + 1,
        )
        return next_page(
            rows, size, query, lambda last: {"d": last["relative_depth"], "id": str(last["id"])}
        )


LEDGER_SELECT = """
SELECT l.*, h.resolution AS hold_resolution, coalesce(f.facts, fo.facts) AS facts
FROM ledger l
LEFT JOIN holds h ON h.id = l.hold_id
LEFT JOIN ledger_facts f ON f.source_key = l.source_key
LEFT JOIN ledger o ON o.id = l.reverses
LEFT JOIN ledger_facts fo ON fo.source_key = o.source_key
"""


async def commissions(
    deps: Deps,
    caller: Caller,
    partner: str,
    start: datetime | None,
    end: datetime | None,
    size: int,
    token: str,
) -> tuple[list[Row], str]:
    async with deps.uow() as uow:
        partner_id = await scoped_partner(uow.session, caller, partner)
        start, end = _window(deps, start, end)
        query = page_tokens.fingerprint("ledger", partner_id, start.isoformat(), end.isoformat())
        size, cursor = page_of(size, token, query)
        rows = await store.fetch_all(
            uow.session,
            LEDGER_SELECT
            + """
            WHERE l.partner_id = :p AND l.occurred_at >= :s AND l.occurred_at < :e
              AND (CAST(:at AS timestamptz) IS NULL
                   OR (l.occurred_at, l.id) < (:at, CAST(:after AS uuid)))
            ORDER BY l.occurred_at DESC, l.id DESC LIMIT :n
            """,
            p=partner_id,
            s=start,
            e=end,
            at=_cursor_at(cursor),
            after=_cursor_id(cursor),
            n=size + 1,
        )
        return next_page(
            rows,
            size,
            query,
            lambda last: {"at": last["occurred_at"].isoformat(), "id": str(last["id"])},
        )


DIMENSIONS = {
    "day": "to_char(l.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    "symbol": "l.symbol",
    "level": "lpad(CAST(l.level AS text), 4, '0')",
    "client": "CAST(l.client_user_id AS text)",
    "rule": "l.rule_id",
}


async def summarize(
    deps: Deps,
    caller: Caller,
    partner: str,
    start: datetime | None,
    end: datetime | None,
    dimension: str,
) -> list[Row]:
    column = DIMENSIONS[dimension]
    async with deps.uow() as uow:
        partner_id = await scoped_partner(uow.session, caller, partner)
        start, end = _window(deps, start, end)
        rows = await store.fetch_all(
            uow.session,
            f"SELECT {column} AS key, sum(l.amount) AS amount, count(*) AS entries,"  # noqa: S608
            " l.currency FROM ledger l WHERE l.partner_id = :p"
            " AND l.occurred_at >= :s AND l.occurred_at < :e"
            " GROUP BY 1, l.currency ORDER BY 1, l.currency",
            p=partner_id,
            s=start,
            e=end,
        )
        if dimension == "level":
            rows = [{**r, "key": str(int(r["key"]))} for r in rows]
        return rows


async def statements(
    deps: Deps, caller: Caller, partner: str, size: int, token: str
) -> tuple[list[tuple[Row, dict[str, list[Row]]]], str]:
    async with deps.uow() as uow:
        partner_id = await scoped_partner(uow.session, caller, partner)
        query = page_tokens.fingerprint("statements", partner_id)
        size, cursor = page_of(size, token, query)
        rows = await store.fetch_all(
            uow.session,
            "SELECT * FROM statements WHERE partner_id = :p"
            " AND (CAST(:at AS timestamptz) IS NULL"
            " OR (created_at, id) < (:at, CAST(:after AS uuid)))"
            " ORDER BY created_at DESC, id DESC LIMIT :n",
            p=partner_id,
            at=_cursor_at(cursor),
            after=_cursor_id(cursor),
            n=size + 1,
        )
        rows, next_token = next_page(
            rows,
            size,
            query,
            lambda last: {"at": last["created_at"].isoformat(), "id": str(last["id"])},
        )
        lines = await store.statement_lines(uow.session, [r["id"] for r in rows])
        return [(r, lines[r["id"]]) for r in rows], next_token


async def partner_with_links(deps: Deps, partner_id: uuid.UUID) -> tuple[Row, list[Row]] | None:
    async with deps.uow() as uow:
        row = await store.partner(uow.session, partner_id)
        if row is None:
            return None
        return row, await store.links(uow.session, partner_id)


async def my_partner(deps: Deps, caller: Caller) -> tuple[Row, list[Row]]:
    async with deps.uow() as uow:
        row = await own_partner(uow.session, caller)
        return row, await store.links(uow.session, row["id"])


async def lines(deps: Deps, statement_id: uuid.UUID) -> dict[str, list[Row]]:
    async with deps.uow() as uow:
        return (await store.statement_lines(uow.session, [statement_id]))[statement_id]

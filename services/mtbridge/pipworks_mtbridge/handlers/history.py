"""Reads of trading activity: mirrored deals and live positions."""

from __future__ import annotations

from dataclasses import dataclass

from pipworks_mtbridge import commands
from pipworks_mtbridge.adapters.repositories import (
    AccountRepository,
    DealCursor,
    DealFilter,
    DealRepository,
)
from pipworks_mtbridge.adapters.repositories.deals import MirroredDeal
from pipworks_mtbridge.domain.accounts import TradingAccount
from pipworks_mtbridge.domain.ports import Position
from pipworks_mtbridge.handlers.accounts import load_account, owner_in_scope
from pipworks_mtbridge.handlers.context import Caller, Deps
from pipworks_mtbridge.handlers.platform_calls import platform_errors


@dataclass(frozen=True)
class DealPage:
    deals: list[MirroredDeal]
    next_cursor: DealCursor | None


@dataclass(frozen=True)
class PositionPage:
    positions: list[tuple[str, Position]]
    next_cursor: commands.PositionCursor | None


async def list_deals(deps: Deps, caller: Caller, cmd: commands.ListDeals) -> DealPage:
    scope = cmd.scope
    if scope.account is not None:
        account = await load_account(deps, caller, scope.account)
        where = DealFilter(None, account.server, account.login, scope.start, scope.end)
    else:
        where = DealFilter(
            owner_in_scope(caller, scope.user_id), None, None, scope.start, scope.end
        )
    async with deps.uow() as uow:
        found = await DealRepository(uow.session).page(
            where, limit=cmd.page_size + 1, after=cmd.after
        )
    page, more = found[: cmd.page_size], len(found) > cmd.page_size
    if not (more and page):
        return DealPage(page, None)
    last = page[-1]
    return DealPage(page, DealCursor(last.deal.time, last.server, last.deal.ticket))


async def list_positions(deps: Deps, caller: Caller, cmd: commands.ListPositions) -> PositionPage:
    scope = cmd.scope
    if scope.account is not None:
        targets = [await load_account(deps, caller, scope.account)]
    else:
        user_id = owner_in_scope(caller, scope.user_id)
        async with deps.uow() as uow:
            targets = await AccountRepository(uow.session).of_user(user_id)
    positions: list[tuple[str, Position]] = []
    for server_name, logins in _by_server(targets).items():
        server = deps.server(server_name)
        with platform_errors(server.name):
            found = await server.platform.positions(logins)
        positions += [(server_name, p) for p in found if _in_range(p, scope)]
    positions.sort(key=lambda item: (item[0], item[1].login, item[1].position_id))
    if cmd.after is not None:
        after = (cmd.after.server, cmd.after.login, cmd.after.position_id)
        positions = [p for p in positions if (p[0], p[1].login, p[1].position_id) > after]
    page, more = positions[: cmd.page_size], len(positions) > cmd.page_size
    if not (more and page):
        return PositionPage(page, None)
    server_name, last = page[-1]
    return PositionPage(page, commands.PositionCursor(server_name, last.login, last.position_id))


def _by_server(accounts: list[TradingAccount]) -> dict[str, list[int]]:
    grouped: dict[str, list[int]] = {}
    for account in accounts:
        grouped.setdefault(account.server, []).append(account.login)
    return grouped


def _in_range(position: Position, scope: commands.Scope) -> bool:
    if scope.start is not None and position.opened_at < scope.start:
        return False
    return scope.end is None or position.opened_at < scope.end

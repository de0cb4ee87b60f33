"""``/api/...``: the MT5 manager Web API endpoints the simulator serves."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from aiohttp import web

from pipworks_mtbridge.mt5sim.model import SimError, bad_params, money
from pipworks_mtbridge.mt5sim.params import read_params
from pipworks_mtbridge.mt5sim.runtime import Simulator
from pipworks_mtbridge.mt5sim.wire import (
    account_json,
    deal_json,
    group_json,
    position_json,
    symbol_json,
    user_json,
)

__all__ = ["PUBLIC_PATHS", "api_routes", "envelope"]

PUBLIC_PATHS = frozenset({"/api/auth/start", "/api/auth/answer"})
VERSION = "484"


def envelope(retcode: str = "0 Done", **fields: Any) -> web.Response:
    body = {"retcode": retcode, **fields}
    return web.Response(
        text=json.dumps(body, separators=(",", ":"), default=_decimal),
        content_type="application/json",
    )


def _decimal(value: object) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(type(value).__name__)


def api_routes(sim: Simulator) -> list[web.RouteDef]:
    state = sim.state

    async def auth_start(request: web.Request) -> web.Response:
        p = await read_params(request)
        srv_rand = sim.sessions.start(
            request.transport, p.integer("login"), p.text("type"), p.integer("version")
        )
        return envelope(version_access=VERSION, srv_rand=srv_rand)

    async def auth_answer(request: web.Request) -> web.Response:
        p = await read_params(request)
        proof = sim.sessions.answer(
            request.transport, p.text("srv_rand_answer"), p.text("cli_rand")
        )
        return envelope(cli_rand_answer=proof, version_trade=VERSION)

    async def test_access(request: web.Request) -> web.Response:
        return envelope()

    async def user_add(request: web.Request) -> web.Response:
        p = await read_params(request)
        user = state.add_user(
            group=p.text("group"),
            name=p.text("name"),
            email=p.text("email", ""),
            leverage=p.integer("leverage"),
            password_main=p.any_text("pass_main", "PassMain"),
            password_investor=p.any_text("pass_investor", "PassInvestor"),
            login=p.optional_integer("login"),
            rights=p.optional_integer("rights"),
        )
        return envelope(answer=user_json(user))

    async def user_update(request: web.Request) -> web.Response:
        p = await read_params(request)
        user = state.update_user(
            p.integer("login"),
            group=p.optional_text("group"),
            leverage=p.optional_integer("leverage"),
            rights=p.optional_integer("rights"),
            name=p.optional_text("name"),
            email=p.optional_text("email"),
        )
        return envelope(answer=user_json(user))

    async def user_get(request: web.Request) -> web.Response:
        p = await read_params(request)
        return envelope(answer=user_json(state.user(p.integer("login"))))

    async def account_get(request: web.Request) -> web.Response:
        p = await read_params(request)
        return envelope(answer=account_json(state.account(state.user(p.integer("login")))))

    async def account_get_batch(request: web.Request) -> web.Response:
        p = await read_params(request)
        users = state.select_users(p.logins(), p.optional_text("group"))
        return envelope(answer=[account_json(state.account(u)) for u in users])

    async def trade_balance(request: web.Request) -> web.Response:
        p = await read_params(request)
        deal = state.balance_operation(
            p.integer("login"),
            p.integer("type"),
            p.decimal("balance"),
            p.text("comment", ""),
            check_margin=p.integer("check_margin", 1) != 0,
        )
        return envelope(answer={"ticket": str(deal.deal)})

    async def deal_get_batch(request: web.Request) -> web.Response:
        p = await read_params(request)
        start, end = p.integer("from"), p.integer("to")
        if start < 0 or end < start:
            raise bad_params("Invalid time range")
        deals = state.deals_between(
            start * 1000, end * 1000 + 999, p.logins(), p.optional_text("group")
        )
        return envelope(answer=[deal_json(d) for d in deals])

    async def position_get_batch(request: web.Request) -> web.Response:
        p = await read_params(request)
        symbol = p.optional_text("symbol")
        answer = []
        for position in state.positions_of(p.logins(), p.optional_text("group")):
            if symbol is not None and position.symbol != symbol:
                continue
            user = state.users[position.login]
            group = state.group(user.group)
            price, profit = state.position_valuation(position, group.currency)
            digits = state.feed.symbols[position.symbol].digits
            answer.append(
                position_json(position, price, money(profit, group.currency_digits), digits)
            )
        return envelope(answer=answer)

    async def group_get(request: web.Request) -> web.Response:
        p = await read_params(request)
        return envelope(answer=group_json(state.group(p.text("group"))))

    async def symbol_get(request: web.Request) -> web.Response:
        p = await read_params(request)
        symbol = state.feed.symbol(p.text("symbol"))
        if symbol is None:
            raise SimError(13, "Symbol not found")
        return envelope(answer=symbol_json(symbol))

    async def tick_last(request: web.Request) -> web.Response:
        p = await read_params(request)
        name = p.text("symbol")
        if state.feed.symbol(name) is None:
            raise SimError(13, "Symbol not found")
        quote = state.feed.quote(name)
        return envelope(
            answer=[
                {
                    "Symbol": name,
                    "Datetime": str(state.now_msc() // 1000),
                    "Bid": format(quote.bid, "f"),
                    "Ask": format(quote.ask, "f"),
                }
            ]
        )

    both = ("GET", "POST")
    table: list[tuple[tuple[str, ...], str, Any]] = [
        (("GET",), "/api/auth/start", auth_start),
        (("GET",), "/api/auth/answer", auth_answer),
        (("GET",), "/api/test/access", test_access),
        (both, "/api/user/add", user_add),
        (both, "/api/user/update", user_update),
        (both, "/api/user/get", user_get),
        (both, "/api/user/account/get", account_get),
        (both, "/api/user/account/get_batch", account_get_batch),
        (both, "/api/trade/balance", trade_balance),
        (both, "/api/deal/get_batch", deal_get_batch),
        (both, "/api/position/get_batch", position_get_batch),
        (both, "/api/group/get", group_get),
        (both, "/api/symbol/get", symbol_get),
        (both, "/api/tick/last", tick_last),
    ]
    return [web.route(m, path, fn) for methods, path, fn in table for m in methods]

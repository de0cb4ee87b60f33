"""``/sim/...``: the control API for tests, demos and benchmarks (no MT5 auth).

- ``GET  /sim/state``                   summary: counts, tickets, prices, activities
- ``GET  /sim/users/{login}``           the MT5 user record and its account figures
- ``POST /sim/tick {steps}``            advance prices (and apply stop-outs)
- ``POST /sim/prices {SYMBOL: bid}``    set bid prices (deterministic margin scenarios)
- ``POST /sim/deals {login, count, symbols?, open_close_mix?}``  N deals at once
- ``POST /sim/positions {login, symbol, action, volume}``        open a position (lots)
- ``POST /sim/positions/{id}/close``    close one
- ``POST /sim/activity {logins, deals_per_second, symbols?, open_close_mix?, duration?, count?}``
  (``logins: "*"``: every login that can trade, including ones added later)
- ``GET  /sim/activity[/{id}]``, ``DELETE /sim/activity[/{id}]``
- ``POST /sim/sessions/drop``           forget every MT5 session (clients get 403)
- ``POST /sim/fail {count, status?}``   the next N ``/api`` requests answer HTTP status
- ``POST /sim/save``                    persist the state file now

Errors answer the same envelope as ``/api`` (``{"retcode": "3 ..."}``).
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from pipworks_mtbridge.mt5sim.activity import ActivitySpec, generate_deal
from pipworks_mtbridge.mt5sim.model import SimError, bad_params, not_found
from pipworks_mtbridge.mt5sim.runtime import Simulator
from pipworks_mtbridge.mt5sim.wire import account_json, deal_json, user_json

__all__ = ["control_routes"]


def _ok(**fields: Any) -> web.Response:
    return web.Response(
        text=json.dumps({"retcode": "0 Done", **fields}, default=str),
        content_type="application/json",
    )


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise bad_params("Invalid JSON body") from None
    if not isinstance(body, dict):
        raise bad_params("Invalid JSON body")
    return body


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise bad_params(f"Invalid {name}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_params(f"Invalid {name}") from None


def _lots_to_volume_ext(value: Any) -> int:
    try:
        lots = Decimal(str(value))
    except InvalidOperation:
        raise bad_params("Invalid volume") from None
    units = lots * 100_000_000
    if not lots.is_finite() or lots <= 0 or units != units.to_integral_value():
        raise bad_params("Invalid volume")
    return int(units)


def control_routes(sim: Simulator) -> list[web.RouteDef]:
    state = sim.state
    symbols = list(state.feed.symbols)

    async def get_state(request: web.Request) -> web.Response:
        return _ok(
            users=len(state.users),
            deals=len(state.deals),
            positions=len(state.positions),
            next_ticket=state.next_ticket,
            last_ticket=state.deals[-1].deal if state.deals else None,
            next_login=state.next_login,
            last_time_msc=state.last_time_msc,
            sessions=sim.sessions.active,
            prices={k: format(v, "f") for k, v in state.feed.bids().items()},
            activities=sim.activities.list(),
        )

    async def get_user(request: web.Request) -> web.Response:
        user = state.user(_int(request.match_info["login"], "login"))
        return _ok(answer={"user": user_json(user), "account": account_json(state.account(user))})

    async def tick(request: web.Request) -> web.Response:
        body = await _body(request)
        steps = _int(body.get("steps", 1), "steps")
        if not 1 <= steps <= 100_000:
            raise bad_params("Invalid steps")
        stop_outs = sim.tick(steps)
        prices = {k: format(v, "f") for k, v in state.feed.bids().items()}
        return _ok(prices=prices, stop_outs=stop_outs)

    async def set_prices(request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            updates = {name: Decimal(str(value)) for name, value in body.items()}
        except InvalidOperation:
            raise bad_params("Invalid price") from None
        for name, bid in updates.items():
            if state.feed.symbol(name) is None or not bid.is_finite() or bid <= 0:
                raise bad_params(f"Invalid price for {name}")
        for name, bid in updates.items():
            state.feed.set_bid(name, bid)
        stop_outs = len(state.enforce_stop_out())
        prices = {k: format(v, "f") for k, v in state.feed.bids().items()}
        return _ok(prices=prices, stop_outs=stop_outs)

    async def inject_deals(request: web.Request) -> web.Response:
        body = await _body(request)
        login = _int(body.get("login"), "login")
        count = _int(body.get("count", 1), "count")
        chosen = [str(s) for s in body.get("symbols") or symbols]
        try:
            mix = float(body.get("open_close_mix", 0.5))
        except (TypeError, ValueError):
            raise bad_params("Invalid open_close_mix") from None
        if (
            not 0 <= mix <= 1
            or not 1 <= count <= 1_000_000
            or any(s not in symbols for s in chosen)
        ):
            raise bad_params("Invalid count or symbols")
        user = state.user(login)
        if user.trade_disabled:
            raise SimError(10017, "Trade disabled")
        tickets: list[int] = []
        for _ in range(count):
            deal = generate_deal(state, login, chosen, mix)
            if deal is None:
                break
            tickets.append(deal.deal)
        return _ok(
            count=len(tickets),
            first_ticket=tickets[0] if tickets else None,
            last_ticket=tickets[-1] if tickets else None,
        )

    async def open_position(request: web.Request) -> web.Response:
        body = await _body(request)
        action = {"buy": 0, "sell": 1, "0": 0, "1": 1}.get(str(body.get("action", "")).lower())
        if action is None:
            raise bad_params("Invalid action")
        deal = state.open_position(
            _int(body.get("login"), "login"),
            str(body.get("symbol", "")),
            action,
            _lots_to_volume_ext(body.get("volume")),
            str(body.get("comment", "")),
        )
        return _ok(answer=deal_json(deal))

    async def close_position(request: web.Request) -> web.Response:
        deal = state.close_position(_int(request.match_info["id"], "id"))
        return _ok(answer=deal_json(deal))

    async def start_activity(request: web.Request) -> web.Response:
        spec = ActivitySpec.parse(await _body(request), symbols)
        return _ok(answer=sim.activities.start(spec))

    async def list_activity(request: web.Request) -> web.Response:
        return _ok(answer=sim.activities.list())

    async def get_activity(request: web.Request) -> web.Response:
        found = sim.activities.get(_int(request.match_info["id"], "id"))
        if found is None:
            raise not_found("Activity not found")
        return _ok(answer=found)

    async def stop_activity(request: web.Request) -> web.Response:
        raw = request.match_info.get("id")
        stopped = await sim.activities.stop(None if raw is None else _int(raw, "id"))
        return _ok(stopped=stopped)

    async def drop_sessions(request: web.Request) -> web.Response:
        return _ok(dropped=sim.sessions.drop_all())

    async def fail(request: web.Request) -> web.Response:
        body = await _body(request)
        count = _int(body.get("count", 1), "count")
        status = _int(body.get("status", 503), "status")
        if count < 0 or not 400 <= status <= 599:
            raise bad_params("Invalid count or status")
        sim.fail_next, sim.fail_status = count, status
        return _ok(count=count, status=status)

    async def save(request: web.Request) -> web.Response:
        return _ok(saved=await sim.save())

    return [
        web.get("/sim/state", get_state),
        web.get("/sim/users/{login}", get_user),
        web.post("/sim/tick", tick),
        web.post("/sim/prices", set_prices),
        web.post("/sim/deals", inject_deals),
        web.post("/sim/positions", open_position),
        web.post("/sim/positions/{id}/close", close_position),
        web.post("/sim/activity", start_activity),
        web.get("/sim/activity", list_activity),
        web.get("/sim/activity/{id}", get_activity),
        web.delete("/sim/activity", stop_activity),
        web.delete("/sim/activity/{id}", stop_activity),
        web.post("/sim/sessions/drop", drop_sessions),
        web.post("/sim/fail", fail),
        web.post("/sim/save", save),
    ]

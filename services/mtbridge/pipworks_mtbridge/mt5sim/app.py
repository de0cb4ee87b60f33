"""The simulator's aiohttp application: MT5 Web API under ``/api``, control under ``/sim``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from pipworks_mtbridge.mt5sim.control import control_routes
from pipworks_mtbridge.mt5sim.handlers import PUBLIC_PATHS, api_routes, envelope
from pipworks_mtbridge.mt5sim.model import SimError
from pipworks_mtbridge.mt5sim.runtime import Simulator
from pipworks_platform.logging import get_logger

__all__ = ["build_app"]

log = get_logger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(sim: Simulator) -> web.Application:
    @web.middleware
    async def protocol(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith("/api/"):
            if sim.fail_next > 0:
                sim.fail_next -= 1
                return web.Response(status=sim.fail_status, text="Simulated failure")
            if path not in PUBLIC_PATHS and not sim.sessions.is_authenticated(request.transport):
                return web.Response(status=403, text="Forbidden")
        try:
            return await handler(request)
        except SimError as exc:
            return envelope(exc.text)

    app = web.Application(middlewares=[protocol], client_max_size=16 * 1024 * 1024)
    app.add_routes(api_routes(sim))
    app.add_routes(control_routes(sim))
    app.cleanup_ctx.append(lambda _app: sim.background())
    return app

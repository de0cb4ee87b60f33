"""Use cases: one coroutine per command or event, each in its own unit(s) of work.

Handlers receive validated commands (see ``validation``) and :class:`Deps`; they raise
:mod:`pipworks_platform.errors` for every refusal and commit state changes together
with their events (the outbox).
"""

from pipworks_mtbridge.handlers.context import BridgeConfig, Caller, Deps, TradingServer

__all__ = ["BridgeConfig", "Caller", "Deps", "TradingServer"]

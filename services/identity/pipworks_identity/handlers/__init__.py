"""Use cases: one coroutine per command, each in its own unit(s) of work.

Handlers receive validated commands (see ``validation``) and a :class:`Deps` with the
adapters; they raise :mod:`pipworks_platform.errors` for every refusal and commit
state changes together with their events (the outbox) and audit entries.
"""

from pipworks_identity.handlers.context import Deps, IdentityConfig, Lifetimes

__all__ = ["Deps", "IdentityConfig", "Lifetimes"]

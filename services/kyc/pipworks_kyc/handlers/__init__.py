"""Use cases of the kyc service: one function per command or event, over a unit of work."""

from pipworks_kyc.handlers.context import Deps, KycConfig

__all__ = ["Deps", "KycConfig"]

"""Repositories over the bridge's tables; each works inside the caller's unit of work."""

from pipworks_mtbridge.adapters.repositories.accounts import AccountCursor, AccountRepository
from pipworks_mtbridge.adapters.repositories.deals import DealCursor, DealFilter, DealRepository
from pipworks_mtbridge.adapters.repositories.margin import MarginStateRepository
from pipworks_mtbridge.adapters.repositories.openings import OpeningRepository
from pipworks_mtbridge.adapters.repositories.operations import OperationRepository
from pipworks_mtbridge.adapters.repositories.sync import CursorRepository

__all__ = [
    "AccountCursor",
    "AccountRepository",
    "CursorRepository",
    "DealCursor",
    "DealFilter",
    "DealRepository",
    "MarginStateRepository",
    "OpeningRepository",
    "OperationRepository",
]

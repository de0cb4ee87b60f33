"""Asyncio client of the MetaTrader 5 manager Web API (DESIGN.md §4).

See ``CONTRACT.md`` beside this file for the surface the bridge relies on.
"""

from pipworks_mtbridge.mt5.client import MAX_COMMENT_LENGTH, Mt5Client
from pipworks_mtbridge.mt5.errors import (
    Mt5AlreadyExists,
    Mt5AuthError,
    Mt5Error,
    Mt5InvalidParams,
    Mt5NotEnoughMoney,
    Mt5NotFound,
    Mt5PermissionDenied,
    Mt5TradeDisabled,
    Mt5Unavailable,
    Mt5WeakPassword,
    Retcode,
)
from pipworks_mtbridge.mt5.records import (
    BalanceType,
    DealAction,
    DealEntry,
    Mt5Account,
    Mt5Deal,
    Mt5Group,
    Mt5Position,
    Mt5User,
    UserRights,
)
from pipworks_mtbridge.mt5.wire import (
    lots_from_volume,
    lots_from_volume_ext,
    lots_to_volume,
    lots_to_volume_ext,
)

__all__ = [
    "MAX_COMMENT_LENGTH",
    "BalanceType",
    "DealAction",
    "DealEntry",
    "Mt5Account",
    "Mt5AlreadyExists",
    "Mt5AuthError",
    "Mt5Client",
    "Mt5Deal",
    "Mt5Error",
    "Mt5Group",
    "Mt5InvalidParams",
    "Mt5NotEnoughMoney",
    "Mt5NotFound",
    "Mt5PermissionDenied",
    "Mt5Position",
    "Mt5TradeDisabled",
    "Mt5Unavailable",
    "Mt5User",
    "Mt5WeakPassword",
    "Retcode",
    "UserRights",
    "lots_from_volume",
    "lots_from_volume_ext",
    "lots_to_volume",
    "lots_to_volume_ext",
]

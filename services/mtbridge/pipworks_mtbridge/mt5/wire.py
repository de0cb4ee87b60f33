"""Conversions between MT5 Web API wire values and Python types.

The Web API sends every number as a JSON string. Money and prices become ``Decimal``
(never ``float``), logins and tickets ``int``, times UTC ``datetime``. Volumes have two
wire forms: ``Volume`` in 1/10,000 lot and ``VolumeExt`` in 1/100,000,000 lot; both become
lots as an exact ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = [
    "VOLUME_EXT_PER_LOT",
    "VOLUME_PER_LOT",
    "from_msc",
    "from_seconds",
    "lots_from_volume",
    "lots_from_volume_ext",
    "lots_of",
    "lots_to_volume",
    "lots_to_volume_ext",
    "to_decimal",
    "to_int",
    "to_wire_decimal",
    "to_wire_seconds",
]

VOLUME_PER_LOT = 10_000
VOLUME_EXT_PER_LOT = 100_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_decimal(value: Any) -> Decimal:
    """A wire number (string, int or JSON-parsed Decimal) as a finite ``Decimal``."""
    if isinstance(value, float | bool) or value is None:
        raise ValueError(f"expected a decimal string, got {type(value).__name__}")
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("expected a decimal string") from None
    if not result.is_finite():
        raise ValueError("expected a finite decimal")
    return result


def to_int(value: Any) -> int:
    """A wire integer (``"123"`` or ``123``) as ``int``."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected an integer string, got {type(value).__name__}")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text.lstrip("-").isdigit():
        raise ValueError("expected an integer string")
    return int(text)


def to_wire_decimal(value: Decimal) -> str:
    """A ``Decimal`` as a plain decimal string (no exponent), e.g. ``"1234.56"``."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError("expected a finite Decimal")
    return format(value, "f")


def _plain(value: Decimal) -> Decimal:
    """``value`` without trailing fractional zeros and without an exponent form."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def lots_from_volume(volume: int) -> Decimal:
    """``Volume`` (1/10,000 lot) as lots: ``15000`` → ``Decimal("1.5")``."""
    return _plain(Decimal(volume).scaleb(-4))


def lots_from_volume_ext(volume_ext: int) -> Decimal:
    """``VolumeExt`` (1/100,000,000 lot) as lots: ``150000000`` → ``Decimal("1.5")``."""
    return _plain(Decimal(volume_ext).scaleb(-8))


def _lots_to_units(lots: Decimal, per_lot: int) -> int:
    units = lots * per_lot
    if units != units.to_integral_value():
        raise ValueError(f"{lots} lots is not a whole number of 1/{per_lot} lot")
    return int(units)


def lots_to_volume(lots: Decimal) -> int:
    """Lots as ``Volume``; ``ValueError`` if not a multiple of 0.0001 lot."""
    return _lots_to_units(lots, VOLUME_PER_LOT)


def lots_to_volume_ext(lots: Decimal) -> int:
    """Lots as ``VolumeExt``; ``ValueError`` if not a multiple of 0.00000001 lot."""
    return _lots_to_units(lots, VOLUME_EXT_PER_LOT)


def lots_of(record: Mapping[str, Any]) -> Decimal:
    """Lots of a deal or position record, preferring the exact ``VolumeExt``.

    Older servers send only ``Volume``; a ``VolumeExt`` of 0 with a non-zero ``Volume``
    is treated as absent.
    """
    ext = to_int(record["VolumeExt"]) if record.get("VolumeExt") not in (None, "") else 0
    volume = to_int(record["Volume"]) if record.get("Volume") not in (None, "") else 0
    if ext or not volume:
        return lots_from_volume_ext(ext)
    return lots_from_volume(volume)


def from_seconds(value: Any) -> datetime:
    """Unix seconds (wire string) as an aware UTC ``datetime``."""
    return _EPOCH + timedelta(seconds=to_int(value))


def from_msc(value: Any) -> datetime:
    """Unix milliseconds (wire string) as an aware UTC ``datetime``, exactly."""
    return _EPOCH + timedelta(milliseconds=to_int(value))


def to_wire_seconds(moment: datetime, *, round_up: bool = False) -> int:
    """An aware ``datetime`` as whole Unix seconds (floored, or ceiled with ``round_up``)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: pass an aware (UTC) datetime")
    delta = moment - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return -(-micros // 1_000_000) if round_up else micros // 1_000_000

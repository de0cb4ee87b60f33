"""Reading request parameters the way the MT5 Web API takes them.

Parameters come from the query string (lower-case names: ``login``, ``group``) and, for
POST requests, from a JSON object body (MT5 record names: ``Login``, ``Group``); both are
merged with case-insensitive names, the body winning. Numbers may be JSON strings or
integers; anything malformed is retcode 3.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from pipworks_mtbridge.mt5sim.model import bad_params

__all__ = ["Params", "read_params"]


class Params:
    """Case-insensitive request parameters with typed accessors raising retcode 3."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = {k.lower(): v for k, v in values.items()}

    def has(self, name: str) -> bool:
        return self._values.get(name.lower()) not in (None, "")

    def text(self, name: str, default: str | None = None) -> str:
        value = self._values.get(name.lower())
        if value is None:
            if default is None:
                raise bad_params(f"Missing {name}")
            return default
        if not isinstance(value, str):
            raise bad_params(f"Invalid {name}")
        return value

    def integer(self, name: str, default: int | None = None) -> int:
        value = self._values.get(name.lower())
        if value in (None, ""):
            if default is None:
                raise bad_params(f"Missing {name}")
            return default
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise bad_params(f"Invalid {name}")
        text = str(value).strip()
        if not text.lstrip("-").isdigit():
            raise bad_params(f"Invalid {name}")
        return int(text)

    def any_text(self, *names: str) -> str:
        """The first of ``names`` present (even if empty); retcode 3 if none is."""
        for name in names:
            value = self._values.get(name.lower())
            if value is not None:
                if not isinstance(value, str):
                    raise bad_params(f"Invalid {name}")
                return value
        raise bad_params(f"Missing {names[0]}")

    def optional_integer(self, name: str) -> int | None:
        return self.integer(name) if self.has(name) else None

    def optional_text(self, name: str) -> str | None:
        return self.text(name) if self.has(name) else None

    def decimal(self, name: str) -> Decimal:
        value = self._values.get(name.lower())
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise bad_params(f"Invalid {name}")
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation:
            raise bad_params(f"Invalid {name}") from None
        if not result.is_finite():
            raise bad_params(f"Invalid {name}")
        return result

    def logins(self, name: str = "login") -> list[int] | None:
        """A comma-separated login list, or ``None`` when absent."""
        if not self.has(name):
            return None
        raw = self._values[name.lower()]
        parts = raw if isinstance(raw, list) else str(raw).split(",")
        try:
            logins = [int(str(p).strip()) for p in parts if str(p).strip()]
        except ValueError:
            raise bad_params(f"Invalid {name}") from None
        if not logins or any(x <= 0 for x in logins):
            raise bad_params(f"Invalid {name}")
        return logins


async def read_params(request: web.Request) -> Params:
    values: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        try:
            body = await request.json(loads=_loads)
        except ValueError:
            raise bad_params("Invalid JSON body") from None
        if not isinstance(body, dict):
            raise bad_params("Invalid JSON body")
        values.update(body)
    return Params(values)


def _loads(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)

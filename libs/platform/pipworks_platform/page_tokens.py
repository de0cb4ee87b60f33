"""Opaque AIP-158 page tokens shared by every service: the position after a page, bound
to the query it came from.

A token is URL-safe base64 of a small JSON object carrying the cursor and a digest of
the request's filters; presenting it with different filters is refused as
INVALID_ARGUMENT instead of silently skipping or repeating items.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any

MAX_TOKEN_LENGTH = 512


class BadPageToken(ValueError):
    """Not a page token of this query."""


def fingerprint(*filters: object) -> str:
    return hashlib.sha256(repr(filters).encode()).hexdigest()[:16]


def encode(cursor: Mapping[str, Any], query: str) -> str:
    body = json.dumps({"c": dict(cursor), "q": query}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode(token: str, query: str) -> dict[str, Any]:
    if len(token) > MAX_TOKEN_LENGTH:
        raise BadPageToken("is not a page token from this service")
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        cursor, bound_to = body["c"], body["q"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise BadPageToken("is not a page token from this service") from None
    if not isinstance(cursor, dict) or bound_to != query:
        raise BadPageToken("belongs to a different query; repeat the same filters")
    return cursor

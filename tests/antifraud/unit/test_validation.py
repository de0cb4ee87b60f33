"""Request text is checked before it reaches the database."""

from __future__ import annotations

import pytest

from pipworks_antifraud import validation
from pipworks_platform.errors import InvalidArgument


@pytest.mark.parametrize("value", ["\x00", "rule\x00id", " \x00 "])
def test_text_with_a_nul_character_is_a_field_violation(value: str) -> None:
    # PostgreSQL text cannot hold NUL: it used to reach the query and fail as INTERNAL.
    with pytest.raises(InvalidArgument) as raised:
        validation.text(value, "rule_id", maximum=63)
    assert [(v.field, v.description) for v in raised.value.violations] == [
        ("rule_id", "must not contain NUL characters")
    ]


def test_text_is_trimmed_and_bounded() -> None:
    assert validation.text("  velocity  ", "rule_id") == "velocity"
    with pytest.raises(InvalidArgument):
        validation.text("x" * 64, "rule_id", maximum=63)
    assert validation.text("", "comment", required=False) == ""

"""Password policy: length, the common-password list shipped as data, padding, repetition."""

from __future__ import annotations

import pytest

from pipworks_identity.domain.passwords import (
    MIN_LENGTH,
    PasswordPolicy,
    canonical_password,
    common_passwords,
)

policy = PasswordPolicy()


def test_the_blocklist_ships_with_the_package_and_is_large() -> None:
    blocklist = common_passwords()
    assert len(blocklist) >= 10_000
    assert {"password", "123456", "qwerty123456", "1qaz2wsx3edc"} <= blocklist
    assert all(entry == entry.lower() and entry.strip() == entry for entry in blocklist)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("", "at least 12"),
        ("Tr0ub4dor&3", "at least 12"),  # 11 characters
        ("x" * 257, "at most 256"),
        ("qwerty123456", "too common"),
        ("QWERTY123456", "too common"),  # the list is case-insensitive
        ("password1234", "too common"),
        ("Dragon!123456789", "digits or symbols added"),
        ("passwordpassword", "repeat"),
        ("abcabcabcabc", "repeat"),
        ("zzzzzzzzzzzzzz", "repeat"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password: str, problem: str) -> None:
    problems = policy.problems(password)
    assert len(problems) == 1
    assert problem in problems[0]


@pytest.mark.parametrize(
    "password",
    ["correct horse battery staple", "violet-harbour-lantern-42", "Ünïcødé-pässphrase"],
)
def test_reasonable_passwords_pass(password: str) -> None:
    assert policy.problems(password) == []


def test_length_counts_characters_after_nfkc_normalisation() -> None:
    composed, decomposed = "é" * MIN_LENGTH, "e\u0301" * MIN_LENGTH
    assert canonical_password(decomposed) == composed
    assert policy.problems(decomposed) == policy.problems(composed)

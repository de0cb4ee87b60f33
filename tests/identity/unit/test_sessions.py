"""Refresh-token families: rotation, reuse detection, expiry, revocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipworks_identity.domain.sessions import (
    FamilyState,
    PresentedToken,
    RefreshVerdict,
    judge_refresh,
    refresh_token_expiry,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=1)


def family(generation: int = 3, *, revoked: bool = False) -> FamilyState:
    return FamilyState(revoked=revoked, expires_at=NOW + timedelta(days=30), generation=generation)


def token(generation: int = 3, *, spent: bool = False, expires_at=LATER) -> PresentedToken:
    return PresentedToken(generation=generation, spent=spent, expires_at=expires_at)


def test_the_current_token_rotates() -> None:
    assert judge_refresh(family(), token(), NOW) is RefreshVerdict.ROTATE


def test_a_spent_or_older_token_is_reuse() -> None:
    assert judge_refresh(family(), token(spent=True), NOW) is RefreshVerdict.REUSED
    assert judge_refresh(family(), token(generation=2), NOW) is RefreshVerdict.REUSED


def test_reuse_is_noticed_even_after_the_token_expired() -> None:
    old = token(generation=1, spent=True, expires_at=NOW - timedelta(days=1))
    assert judge_refresh(family(), old, NOW) is RefreshVerdict.REUSED


def test_expired_tokens_and_sessions_do_not_rotate() -> None:
    assert judge_refresh(family(), token(expires_at=NOW), NOW) is RefreshVerdict.EXPIRED
    ended = FamilyState(revoked=False, expires_at=NOW, generation=3)
    assert judge_refresh(ended, token(), NOW) is RefreshVerdict.EXPIRED


def test_nothing_rotates_in_a_revoked_family() -> None:
    assert judge_refresh(family(revoked=True), token(), NOW) is RefreshVerdict.REVOKED


def test_refresh_tokens_never_outlive_their_session() -> None:
    session_end = NOW + timedelta(days=3)
    assert refresh_token_expiry(NOW, timedelta(days=14), session_end) == session_end
    assert refresh_token_expiry(NOW, timedelta(days=1), session_end) == NOW + timedelta(days=1)

"""Account lockout: after N failed password or second-factor attempts, lock for a while.

Each lock lasts longer than the one before (1 min, 5 min, 15 min, ... by default) until
a login succeeds, which resets both the failure count and the escalation. Attempts are
counted *before* the credential is checked (see the users repository), so concurrent
guesses cannot slip past the threshold while earlier ones are still being verified.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

DEFAULT_THRESHOLD = 5
DEFAULT_DURATIONS: tuple[timedelta, ...] = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=4),
)


@dataclass(frozen=True)
class LockoutPolicy:
    threshold: int = DEFAULT_THRESHOLD
    durations: tuple[timedelta, ...] = DEFAULT_DURATIONS

    def __post_init__(self) -> None:
        if self.threshold < 1:
            raise ValueError("lockout threshold must be at least 1")
        if not self.durations or any(d <= timedelta(0) for d in self.durations):
            raise ValueError("lockout durations must be positive and at least one")

    def locks_at(self, failed_attempts: int) -> bool:
        """Whether the failure that brought the count to ``failed_attempts`` locks."""
        return failed_attempts >= self.threshold

    def lock_duration(self, previous_lockouts: int) -> timedelta:
        """How long the next lock lasts, given how many came before it since the last login."""
        return self.durations[min(previous_lockouts, len(self.durations) - 1)]

    def locked_until(self, now: datetime, previous_lockouts: int) -> datetime:
        return now + self.lock_duration(previous_lockouts)

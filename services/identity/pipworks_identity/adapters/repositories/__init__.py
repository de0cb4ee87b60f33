"""Repositories: the queries behind each aggregate, run on a unit of work's session.

They never commit; the unit of work does. Counters that must hold under concurrency
(failed attempts, TOTP steps, single-use tokens) are single atomic statements.
"""

from pipworks_identity.adapters.repositories.challenges import (
    MfaChallengeRepository,
    OneTimeTokenRepository,
    TokenPurpose,
)
from pipworks_identity.adapters.repositories.recovery_codes import RecoveryCodeRepository
from pipworks_identity.adapters.repositories.restrictions import LoginRestrictionRepository
from pipworks_identity.adapters.repositories.service_accounts import (
    ServiceAccountRecord,
    ServiceAccountRepository,
)
from pipworks_identity.adapters.repositories.sessions import SessionRecord, SessionRepository
from pipworks_identity.adapters.repositories.throttle import ThrottleRepository
from pipworks_identity.adapters.repositories.users import UserRecord, UserRepository

__all__ = [
    "LoginRestrictionRepository",
    "MfaChallengeRepository",
    "OneTimeTokenRepository",
    "RecoveryCodeRepository",
    "ServiceAccountRecord",
    "ServiceAccountRepository",
    "SessionRecord",
    "SessionRepository",
    "ThrottleRepository",
    "TokenPurpose",
    "UserRecord",
    "UserRepository",
]

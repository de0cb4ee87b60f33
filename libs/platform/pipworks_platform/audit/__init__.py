"""The hash-chained audit log every service keeps for staff actions and decisions.

``chain`` is pure (building and verifying entries); ``repository`` appends and reads the
``audit_log`` table under an advisory lock; ``verification`` recomputes a whole chain.
"""

from pipworks_platform.audit.chain import (
    GENESIS_HASH,
    SYSTEM_ACTOR,
    AuditEntry,
    AuditRecord,
    ChainReport,
    ChainVerifier,
    verify_chain,
)
from pipworks_platform.audit.repository import AuditLogRepository
from pipworks_platform.audit.verification import check_chain, verify_and_record

__all__ = [
    "GENESIS_HASH",
    "SYSTEM_ACTOR",
    "AuditEntry",
    "AuditLogRepository",
    "AuditRecord",
    "ChainReport",
    "ChainVerifier",
    "check_chain",
    "verify_and_record",
    "verify_chain",
]

"""``python -m pipworks_<service> verify-audit``: recompute the audit log's hash chain.

Prints one JSON line and exits 0 when the chain is intact, 1 at the first broken link
(its sequence number is in the output), 2 when the configuration is unusable. Read-only:
safe to run against a live database or a restored backup.
"""

from __future__ import annotations

import asyncio
import json
import sys

from pipworks_platform.audit.chain import ChainReport
from pipworks_platform.audit.verification import check_chain
from pipworks_platform.db import UnitOfWorkFactory, create_engine, session_factory
from pipworks_platform.logging import configure_logging
from pipworks_platform.settings import ServiceSettings, SettingsError


def verify_audit(service: str) -> int:
    try:
        settings = ServiceSettings.from_env()
        url = settings.require_database_url()
    except SettingsError as exc:
        print(f"pipworks-{service} verify-audit: {exc}", file=sys.stderr)
        return 2
    configure_logging(service, settings.log_level, stream=sys.stderr)
    report = asyncio.run(_check(service, url))
    print(
        json.dumps(
            {
                "intact": report.intact,
                "entries_checked": report.entries_checked,
                "first_broken_sequence": report.first_broken_sequence,
            }
        )
    )
    return 0 if report.intact else 1


async def _check(service: str, url: str) -> ChainReport:
    engine = create_engine(url, application_name=f"pipworks-{service}-verify-audit", pool_size=1)
    try:
        return await check_chain(UnitOfWorkFactory(session_factory(engine), service=service))
    finally:
        await engine.dispose()

"""The screening index a service process holds, kept in step with the loaded lists.

The lists live in the database (so every replica and every restart sees the same
entries); each process builds its in-memory index from them and rebuilds it when the
lists' load stamp moves (another replica reloaded them).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from pipworks_kyc.adapters.repositories import ListRepository
from pipworks_kyc.screening.lists import OFAC_SDN, OPENSANCTIONS, read_ofac_sdn, read_opensanctions
from pipworks_kyc.screening.matcher import DEFAULT_THRESHOLD, ListEntry, Match, ScreeningIndex
from pipworks_platform.errors import FailedPrecondition

log = structlog.get_logger(__name__)


class Screening:
    def __init__(
        self,
        *,
        opensanctions_files: Sequence[Path] = (),
        ofac_sdn_files: Sequence[Path] = (),
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        self.opensanctions_files = tuple(opensanctions_files)
        self.ofac_sdn_files = tuple(ofac_sdn_files)
        self.threshold = threshold
        self._index = ScreeningIndex()
        self._stamp: str | None = None
        self._lock = asyncio.Lock()

    async def ensure_current(self, session: AsyncSession) -> None:
        repo = ListRepository(session)
        stamp = await repo.stamp()
        if stamp == self._stamp:
            return
        async with self._lock:
            if stamp == self._stamp:
                return
            entries = await repo.all_entries()
            self._index = await asyncio.to_thread(ScreeningIndex.build, entries)
            self._stamp = stamp
            log.info("screening index built", entries=len(entries))

    def search(self, name: str, birth_date: date | None) -> list[Match]:
        return self._index.search(name, birth_date=birth_date, threshold=self.threshold)

    def read_files(self) -> dict[str, tuple[list[ListEntry], str]]:
        """Parse every configured file: by list source, the entries and a digest of the
        files' content (blocking: run in a thread)."""
        loaded: dict[str, tuple[list[ListEntry], str]] = {}
        for source, paths, reader in (
            (OPENSANCTIONS, self.opensanctions_files, read_opensanctions),
            (OFAC_SDN, self.ofac_sdn_files, read_ofac_sdn),
        ):
            if not paths:
                continue
            digest = hashlib.sha256()
            entries: list[ListEntry] = []
            for path in paths:
                try:
                    digest.update(path.read_bytes())
                    entries.extend(reader(path))
                except (OSError, UnicodeDecodeError, csv.Error) as exc:
                    raise FailedPrecondition(
                        f"the {source} list file {path.name} cannot be read ({type(exc).__name__})",
                        reason="LIST_FILE_UNREADABLE",
                    ) from None
            loaded[source] = (entries, digest.hexdigest())
        return loaded

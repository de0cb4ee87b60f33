"""The unprivileged OS account that runs PostgreSQL when we are root.

PostgreSQL refuses to start as root, because a superuser session could then run
programs with root's rights (``COPY ... TO PROGRAM``). Developers run as themselves and
the server simply runs as them; containers and CI run as root, so there the server runs
as a dedicated system account (created on first use, like pgserver does), falling back to
``nobody`` where accounts cannot be created. That account must be able to reach the data
directory and the binaries, which may sit under root-only directories such as pytest's
``/tmp/pytest-of-root``: we add the search bit (never the read bit) on those ancestors.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ACCOUNT_NAME = "pipworks-pg"
FALLBACK_ACCOUNT = "nobody"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Account:
    """An OS account a child process is switched to."""

    name: str
    uid: int
    gid: int

    def popen_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :class:`subprocess.Popen` that drop root for the child."""
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def server_account() -> Account | None:
    """The account PostgreSQL must run as, or ``None`` to run as the current user."""
    if os.geteuid() != 0:
        return None
    entry = _ensure_account(ACCOUNT_NAME)
    if entry is None:
        _log.warning(
            "could not create system account %r; running PostgreSQL as %r",
            ACCOUNT_NAME,
            FALLBACK_ACCOUNT,
        )
        entry = pwd.getpwnam(FALLBACK_ACCOUNT)
    return Account(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _ensure_account(name: str) -> pwd.struct_passwd | None:
    """Look the account up, creating it with ``useradd`` if it is missing.

    Several pytest workers may race to create it; the loser's ``useradd`` fails on the
    passwd lock or on the name, so we retry the lookup rather than trust the exit code.
    """
    useradd = shutil.which("useradd") or shutil.which("useradd", path="/usr/sbin:/sbin")
    nologin = shutil.which("nologin", path="/usr/sbin:/sbin:/usr/bin:/bin") or "/bin/false"
    for _ in range(5):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
        if useradd is None:
            return None
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", nologin, name],
            capture_output=True,
            check=False,
        )
        time.sleep(0.1)
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _searchable_by(st: os.stat_result, account: Account) -> bool:
    if st.st_uid == account.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == account.gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def make_reachable(path: Path, account: Account) -> None:
    """Let ``account`` traverse every ancestor directory of ``path``."""
    for directory in path.resolve().parents:
        st = directory.stat()
        if not _searchable_by(st, account):
            directory.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)
            _log.info("added o+x to %s so %s can reach %s", directory, account.name, path)


def hand_over(directory: Path, account: Account) -> None:
    """Make ``account`` own ``directory`` and everything in it (a no-op when it already does)."""
    if directory.stat().st_uid == account.uid:
        return
    for root, dirs, files in os.walk(directory):
        for name in (*dirs, *files):
            os.chown(Path(root, name), account.uid, account.gid, follow_symlinks=False)
    os.chown(directory, account.uid, account.gid)

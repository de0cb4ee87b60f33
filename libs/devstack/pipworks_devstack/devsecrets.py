"""Development secrets, generated once and kept in ``.data/dev-secrets.json`` (mode 0600).

They must be stable across runs: the database roles keep their passwords, and data
encrypted at rest under the dev keyring must stay readable. So an existing file is only
ever extended (a password for a newly configured service), never regenerated; a file
that cannot be parsed is an error, not a reason to start over.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

ACTIVE_KEY_ID = "dev1"
SIGNING_KEY_ID = "dev-signing-1"
_FORMAT_VERSION = 1

_log = logging.getLogger(__name__)


class SecretsError(Exception):
    """The secrets file exists but cannot be used."""


@dataclass(frozen=True)
class DevSecrets:
    database_passwords: dict[str, str]
    encryption_keys: dict[str, str]
    active_key_id: str
    signing_keys: dict[str, str]
    active_signing_key_id: str
    admin_password: str
    mt5sim_password: str

    @property
    def signing_keys_env(self) -> str:
        """``PIPWORKS_IDENTITY_SIGNING_KEYS``: ``kid:<base64 Ed25519 seed>`` entries."""
        return ",".join(f"{kid}:{seed}" for kid, seed in self.signing_keys.items())

    @property
    def encryption_keys_env(self) -> str:
        """``PIPWORKS_ENCRYPTION_KEYS``: ``kid:<base64>`` entries joined by commas."""
        return ",".join(f"{kid}:{key}" for kid, key in self.encryption_keys.items())


def load_or_create(path: Path, database_users: Iterable[str]) -> DevSecrets:
    """Load the secrets file, adding whatever is missing for ``database_users``."""
    data = _read(path) if path.exists() else None
    changed = data is None
    if data is None:
        data = {
            "version": _FORMAT_VERSION,
            "database_passwords": {},
            "encryption": {
                "active_key_id": ACTIVE_KEY_ID,
                "keys": {ACTIVE_KEY_ID: base64.b64encode(secrets.token_bytes(32)).decode()},
            },
        }
    identity = data.setdefault("identity", {})
    if not identity.get("signing_keys"):
        identity["signing_keys"] = {SIGNING_KEY_ID: _ed25519_seed()}
        identity["active_signing_key_id"] = SIGNING_KEY_ID
        changed = True
    if not identity.get("admin_password"):
        identity["admin_password"] = secrets.token_urlsafe(18)
        changed = True
    if not data.get("mt5sim_password"):
        # MT5's password policy: lower- and upper-case letters and digits.
        data["mt5sim_password"] = f"Mt5{secrets.token_hex(8)}x9"
        changed = True
    passwords: dict[str, str] = data["database_passwords"]
    for user in database_users:
        if user not in passwords:
            passwords[user] = secrets.token_urlsafe(24)
            changed = True
    if changed:
        _write(path, data)
    return DevSecrets(
        database_passwords=dict(passwords),
        encryption_keys=dict(data["encryption"]["keys"]),
        active_key_id=data["encryption"]["active_key_id"],
        signing_keys=dict(identity["signing_keys"]),
        active_signing_key_id=identity["active_signing_key_id"],
        admin_password=identity["admin_password"],
        mt5sim_password=data["mt5sim_password"],
    )


def _ed25519_seed() -> str:
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode()


def _read(path: Path) -> dict[str, Any]:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        _log.warning("%s was readable by others (mode %o); restricting it to 0600", path, mode)
        path.chmod(0o600)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        passwords = data["database_passwords"]
        keys = data["encryption"]["keys"]
        active = data["encryption"]["active_key_id"]
        valid = (
            isinstance(passwords, dict)
            and all(isinstance(v, str) for v in passwords.values())
            and isinstance(keys, dict)
            and all(len(base64.b64decode(v, validate=True)) == 32 for v in keys.values())
            and active in keys
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise SecretsError(f"{path} is damaged ({exc}); fix or delete it") from None
    if not valid:
        raise SecretsError(f"{path} is damaged (unexpected content); fix or delete it")
    return dict(data)


def _write(path: Path, data: dict[str, Any]) -> None:
    """Write atomically, creating the file 0600 so the secrets are never briefly world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # in case a crashed earlier write left the file with another mode
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(data, file, indent=2, sort_keys=True)
        file.write("\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)

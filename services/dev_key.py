"""The development API key: made on first start when GAMIFY_API_KEYS is unset, kept showable.

Trade-off (a development convenience, not for production): the key is stored in plain text in
``<data dir>/dev_api_key.json`` (mode 0600), so ``gamify keys show-dev`` can print it again and
``gamify keys rotate-dev`` can replace it. Anyone who can read the data dir can read the key, but
they can read the log and read models there too. Production keys come from GAMIFY_API_KEYS and
are only ever held as SHA-256 digests. Versions before this one stored the development key
hashed in ``api_keys.json``; such a key still works but cannot be shown: rotate it.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from services.api.auth import KeyRing, StoredKey, digest

DEV_KEY_FILE = "dev_api_key.json"
LEGACY_FILE = "api_keys.json"
TENANT = "default"


@dataclass(frozen=True, slots=True)
class DevKey:
    """The development key ring; ``key`` is None when only a legacy hash is stored."""

    ring: KeyRing
    key: str | None
    created: bool
    path: Path


def load_or_create(data_dir: Path) -> DevKey:
    """The stored development key of tenant ``default`` (admin), creating it when there is none."""
    path = data_dir / DEV_KEY_FILE
    if path.exists():
        key = read(data_dir)
        assert key is not None
        return DevKey(_ring(key), key, False, path)
    legacy = data_dir / LEGACY_FILE
    if legacy.exists():
        stored = json.loads(legacy.read_text())
        ring = KeyRing(
            [StoredKey(k["tenant"], bytes.fromhex(k["sha256"]), k["admin"]) for k in stored]
        )
        return DevKey(ring, None, False, legacy)
    key = rotate(data_dir)
    return DevKey(_ring(key), key, True, path)


def read(data_dir: Path) -> str | None:
    """The stored plaintext development key, or None when there is none (or only a legacy hash)."""
    path = data_dir / DEV_KEY_FILE
    if not path.exists():
        return None
    return str(json.loads(path.read_text())["key"])


def rotate(data_dir: Path) -> str:
    """Make a new development key, replace the stored one (and any legacy hash), return it."""
    key = "gmf_dev_" + secrets.token_hex(16)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / DEV_KEY_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"tenant": TENANT, "key": key, "admin": True}, out)
    os.replace(tmp, path)
    (data_dir / LEGACY_FILE).unlink(missing_ok=True)
    return key


def _ring(key: str) -> KeyRing:
    return KeyRing([StoredKey(TENANT, digest(key), True)])

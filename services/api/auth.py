"""API keys: stored as SHA-256 digests, looked up in constant time, each bound to one tenant."""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass

from services.config import ApiKeySpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: a tenant, and whether the key has the admin scope."""

    tenant: str
    admin: bool


@dataclass(frozen=True, slots=True)
class StoredKey:
    tenant: str
    digest: bytes
    admin: bool


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class KeyRing:
    """The keys a process accepts; plaintext keys are never kept in memory after start-up."""

    def __init__(self, keys: list[StoredKey]) -> None:
        self._keys = keys

    @classmethod
    def from_specs(cls, specs: tuple[ApiKeySpec, ...]) -> KeyRing:
        return cls([StoredKey(s.tenant, digest(s.key), s.admin) for s in specs])

    @property
    def tenants(self) -> frozenset[str]:
        return frozenset(k.tenant for k in self._keys)

    def authenticate(self, presented: str | None) -> Principal | None:
        """The principal of ``presented``; every stored key is compared, so timing leaks nothing."""
        if not presented:
            return None
        wanted = digest(presented)
        match: StoredKey | None = None
        for stored in self._keys:
            if hmac.compare_digest(stored.digest, wanted):
                match = stored
        return Principal(match.tenant, match.admin) if match else None

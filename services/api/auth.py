"""API keys: stored as SHA-256 digests, looked up in constant time, each bound to one tenant."""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

from services.config import ApiKeySpec
from services.keys.domain import key_digest

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: a tenant, whether the key has the admin scope, and which key.

    ``key_id`` names the key without revealing it (an issued key's id, or ``cfg-`` and the first
    16 hex digits of a configured key's SHA-256), for rate-limit counters; ``rate_limit`` is the
    key's own per-key limit (requests per 60 s) when it has one.
    """

    tenant: str
    admin: bool
    key_id: str = ""
    rate_limit: int | None = None


@dataclass(frozen=True, slots=True)
class StoredKey:
    tenant: str
    digest: bytes
    admin: bool


def digest(key: str) -> bytes:
    """SHA-256 of a key (the same digest issued keys are stored under, in hex)."""
    return bytes.fromhex(key_digest(key))


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
        if match is None:
            return None
        return Principal(match.tenant, match.admin, "cfg-" + match.digest.hex()[:16])

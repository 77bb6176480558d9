"""API keys: stored as SHA-256 digests, looked up by the digest of the key presented, each bound to
one tenant."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from services.config import ApiKeySpec

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
    """SHA-256 of a key (the same digest issued keys are stored under, in hex: ``key_digest``)."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


class KeyRing:
    """The keys a process accepts; plaintext keys are never kept in memory after start-up.

    Each key's principal is made once, at start-up, and found by the presented key's SHA-256
    digest: one hash and one dictionary lookup per request. The lookup's time depends only on
    the digest of what was presented, which tells nothing about a stored key without a SHA-256
    preimage (it does not depend on how much of a stored key a guess gets right).
    """

    def __init__(self, keys: list[StoredKey]) -> None:
        self._keys = keys
        self._principals = {
            k.digest: Principal(k.tenant, k.admin, "cfg-" + k.digest.hex()[:16]) for k in keys
        }

    @classmethod
    def from_specs(cls, specs: tuple[ApiKeySpec, ...]) -> KeyRing:
        return cls([StoredKey(s.tenant, digest(s.key), s.admin) for s in specs])

    @property
    def tenants(self) -> frozenset[str]:
        return frozenset(k.tenant for k in self._keys)

    def authenticate(self, presented: str | None) -> Principal | None:
        """The principal of ``presented``, or None (no such key, or nothing presented)."""
        if not presented:
            return None
        return self._principals.get(digest(presented))

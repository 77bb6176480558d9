"""Pure decisions on API-key streams: issue a key (given its digest), revoke it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from schemas.events import ApiKeyIssued, ApiKeyRevoked, Event

SCOPES = ("standard", "admin")
KEY_PREFIX = "gmf_live_"  # then 32 hex digits (128 random bits), as the reference's bq_live_
SHOWN_PREFIX_LENGTH = len(KEY_PREFIX) + 4  # what listings show to recognise a key


def key_digest(key: str) -> str:
    """Hex SHA-256 of a key: what the log and the read models hold, for issued and configured keys.

    A plain SHA-256 suffices for keys of 128 random bits: there is no dictionary to try.
    """
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyNotFound(Exception):
    def __init__(self, ident: str) -> None:
        super().__init__(f"API key not found: {ident}")


class ApiKeyExists(Exception):
    """A new key's id is taken (ids are random: only a broken id generator gets here)."""

    def __init__(self, ident: str) -> None:
        super().__init__(f"An API key with id {ident!r} already exists")


@dataclass(frozen=True, slots=True)
class ApiKeyState:
    """What a decision knows of a key stream."""

    version: int
    id: str
    revoked: bool


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key to issue: its id, digest (hex SHA-256), shown prefix, name, scope and own limit."""

    id: str
    key_hash: str
    prefix: str
    name: str
    scope: str
    rate_limit: int | None = None


def decide_issue(state: ApiKeyState | None, new: NewKey) -> list[Event]:
    """Issue ``new`` on a fresh stream."""
    if state is not None:
        raise ApiKeyExists(new.id)
    return [ApiKeyIssued(new.id, new.key_hash, new.prefix, new.name, new.scope, new.rate_limit)]


def decide_revoke(state: ApiKeyState) -> list[Event]:
    """Revoke the key; revoking twice changes nothing."""
    return [] if state.revoked else [ApiKeyRevoked()]

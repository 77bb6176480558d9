"""Pure fold of api_key-stream commits into key rows, with the version check."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from schemas.events import ApiKeyIssued, ApiKeyRevoked, Commit

APPLIED, CONFLICT = "applied", "conflict"


@dataclass(frozen=True, slots=True)
class ApiKeyRow:
    """One issued key: its digest (hex SHA-256), how it is shown, and whether it is revoked.

    ``last_used_at`` is not from the log: it is read from ``api_key_usage``, which the API
    writes at most once a minute per key.
    """

    tenant: str
    id: str
    key_hash: str = ""
    prefix: str = ""
    name: str = ""
    scope: str = "standard"
    rate_limit: int | None = None
    version: int = 0
    created_at: str = ""
    revoked_at: str | None = None
    last_used_at: str | None = None

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def as_json(self) -> dict[str, Any]:
        """The key as GET /admin/api-keys lists it: never the key, never its digest."""
        return {
            "id": self.id,
            "prefix": self.prefix,
            "name": self.name,
            "scope": self.scope,
            "rate_limit": self.rate_limit,
            "is_active": self.is_active,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "revoked_at": self.revoked_at,
        }


def apply_api_key(row: ApiKeyRow | None, commit: Commit) -> tuple[str, ApiKeyRow | None]:
    """Fold ``commit`` if it was decided on the row's version; else a conflict."""
    if commit.expected_version != (row.version if row else 0):
        return CONFLICT, row
    if not commit.events:
        return APPLIED, row
    current = row or ApiKeyRow(commit.tenant, commit.participant_id)
    for event in commit.events:
        if isinstance(event, ApiKeyIssued):
            current = replace(
                current,
                key_hash=event.key_hash,
                prefix=event.prefix,
                name=event.name,
                scope=event.scope,
                rate_limit=event.rate_limit,
                created_at=commit.recorded_at,
            )
        elif isinstance(event, ApiKeyRevoked) and current.revoked_at is None:
            current = replace(current, revoked_at=commit.recorded_at)
    return APPLIED, replace(current, version=current.version + 1)

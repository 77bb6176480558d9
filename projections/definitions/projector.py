"""Pure fold of definition-stream commits into definition rows, with the version check."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from schemas.events import Commit, DefinitionCreated, DefinitionDeactivated, DefinitionUpdated

APPLIED, CONFLICT, DUPLICATE = "applied", "conflict", "duplicate"


@dataclass(frozen=True, slots=True)
class DefinitionRow:
    """One admin definition: its kind, id, unique code, JSON body and whether it is active."""

    tenant: str
    kind: str
    code: str
    id: str = ""
    version: int = 0
    body: dict[str, Any] = field(default_factory=dict)
    is_active: bool = True
    created_at: str = ""
    updated_at: str = ""

    def as_json(self) -> dict[str, Any]:
        """The definition as the admin API shows it."""
        return {
            "id": self.id,
            "code": self.code,
            **self.body,
            "is_active": self.is_active,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def stream_id(kind: str, code: str) -> str:
    """A definition's stream: one per kind and code, so a code is unique per tenant and kind."""
    return f"{kind}:{code}"


def apply_definition(row: DefinitionRow | None, commit: Commit) -> tuple[str, DefinitionRow | None]:
    """Fold ``commit`` if it was decided on the row's version; else a conflict."""
    if commit.expected_version != (row.version if row else 0):
        return CONFLICT, row
    if not commit.events:
        return APPLIED, row
    kind, _, code = commit.participant_id.partition(":")
    current = row or DefinitionRow(commit.tenant, kind, code)
    for event in commit.events:
        if isinstance(event, DefinitionCreated):
            current = replace(
                current,
                id=event.id,
                body=dict(event.body),
                is_active=True,
                created_at=commit.recorded_at,
            )
        elif isinstance(event, DefinitionUpdated):
            changes = dict(event.changes)
            active = changes.pop("is_active", current.is_active)
            current = replace(current, body={**current.body, **changes}, is_active=bool(active))
        elif isinstance(event, DefinitionDeactivated):
            current = replace(current, is_active=False)
    return APPLIED, replace(current, version=current.version + 1, updated_at=commit.recorded_at)

"""Pure decisions on definition streams: create (unique code), update, soft delete."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.events import DefinitionCreated, DefinitionDeactivated, DefinitionUpdated, Event
from services.definitions.checks import problems

# URL resource name -> definition kind (the JSON Schema is schemas/json/definitions/<kind>.v1.json)
KINDS = {
    "tiers": "tier",
    "badges": "badge",
    "streaks": "streak",
    "rewards": "reward",
    "challenges": "challenge",
    "leaderboards": "leaderboard",
    "rules": "rule",
}


class DuplicateCode(Exception):
    def __init__(self, kind: str, code: str) -> None:
        super().__init__(f"A {kind} with code {code!r} already exists")


class DefinitionNotFound(Exception):
    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind.capitalize()} not found: {ident}")


class InvalidDefinition(Exception):
    """The definition passes its schema but means nothing the engine can evaluate (422)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["msg"])
        self.errors = errors


class CodeIsImmutable(Exception):
    def __init__(self) -> None:
        super().__init__("code cannot be changed; create a new definition instead")


@dataclass(frozen=True, slots=True)
class DefinitionState:
    """What a decision knows of a definition stream."""

    version: int
    id: str
    code: str
    body: dict[str, Any] = field(default_factory=dict)
    is_active: bool = True


def decide_create(
    state: DefinitionState | None, kind: str, body: dict[str, Any], new_id: str
) -> list[Event]:
    """Create the definition; a code that exists (even soft-deleted) is a conflict."""
    if state is not None:
        raise DuplicateCode(kind, state.code)
    fields = {k: v for k, v in body.items() if k not in ("code", "id", "is_active")}
    _check(kind, fields)
    return [DefinitionCreated(kind=kind, id=new_id, code=body["code"], body=fields)]


def decide_update(state: DefinitionState, changes: dict[str, Any], kind: str) -> list[Event]:
    """Set the given fields; nothing changes when they already hold those values. The result
    must still make sense (checked unless only ``is_active`` changes)."""
    if "code" in changes and changes["code"] != state.code:
        raise CodeIsImmutable()
    current = {**state.body, "is_active": state.is_active}
    wanted = {k: v for k, v in changes.items() if k not in ("code", "id") and current.get(k) != v}
    if set(wanted) - {"is_active"}:
        _check(kind, {**state.body, **{k: v for k, v in wanted.items() if k != "is_active"}})
    return [DefinitionUpdated(changes=wanted)] if wanted else []


def _check(kind: str, body: dict[str, Any]) -> None:
    found = problems(kind, body)
    if found:
        raise InvalidDefinition(found)


def decide_delete(state: DefinitionState) -> list[Event]:
    """Soft delete: the definition stays, inactive; deleting twice changes nothing."""
    return [DefinitionDeactivated()] if state.is_active else []

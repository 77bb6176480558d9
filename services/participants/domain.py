"""Pure decisions: given a participant's state and a command, the events that follow, or an error."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from schemas.events import (
    Event,
    ParticipantProfileUpdated,
    ParticipantRegistered,
    PointsDeducted,
)
from services.limits import MAX_MAP_BYTES, MAX_MAP_KEYS
from services.participants.commands import (
    UNSET,
    AwardPoints,
    DeductPoints,
    RegisterParticipant,
    UpdateParticipant,
)
from services.participants.engine import Catalog, Draft, settle


class DomainError(Exception):
    """A command that the rules refuse; nothing is written."""


class ParticipantNotFound(DomainError):
    def __init__(self, participant_id: str) -> None:
        super().__init__(f"Participant not found: {participant_id}")


class UnknownDefinition(DomainError):
    """The command names a tier, badge, streak or reward that does not exist or is inactive."""

    def __init__(self, kind: str, code: str) -> None:
        super().__init__(f"{kind.capitalize()} not found: {code}")


class Refused(DomainError):
    """A rule refuses the command in the current state (a reward's cap or stock): 409."""


class AttributesTooLarge(DomainError):
    """A PATCH whose merged ``attributes`` would exceed what one request may send (422): the
    stored map stays as bounded as the boundary's maps (services/validation.py)."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self.errors = [{"loc": ["body", "attributes"], "msg": msg, "type": "too_large"}]


class InsufficientPoints(DomainError):
    def __init__(self, available: int, requested: int) -> None:
        super().__init__(f"Insufficient points. Available: {available}, requested: {requested}")


@dataclass(frozen=True, slots=True)
class ParticipantState:
    """What a decision needs to know about a participant, at ``version``."""

    version: int
    display_name: str | None = None
    avatar_url: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    balance: int = 0
    total_earned: int = 0
    total_spent: int = 0
    sections: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Env:
    """What a decision gets from outside: new ids, the time, the tenant's definitions."""

    new_id: Callable[[], str]
    now: datetime
    catalog: Catalog = field(default_factory=Catalog)

    @property
    def at(self) -> str:
        return self.now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Decider = Callable[[Draft, Any], None]
# Command type -> decider that adds its events to the draft (engine features register here).
DECIDERS: dict[type, Decider] = {}


def decider(command_type: type) -> Callable[[Decider], Decider]:
    def register(fn: Decider) -> Decider:
        DECIDERS[command_type] = fn
        return fn

    return register


def decide(state: ParticipantState | None, command: Any, env: Env) -> list[Event]:
    """Return the events ``command`` produces on ``state`` (None: the participant does not exist).

    Profile commands change fields only; every other command runs its decider on a draft and
    then the consequence rules (tiers, badges, ...), all in one list of events.
    """
    if isinstance(command, RegisterParticipant):
        return _register(state, command)
    if isinstance(command, UpdateParticipant):
        if state is None:
            raise ParticipantNotFound(command.participant_id)
        return _update(state, command)
    fn = DECIDERS.get(type(command))
    if fn is None:
        raise TypeError(f"unknown command {command!r}")
    draft = Draft(state, catalog=env.catalog, now=env.now, new_id=env.new_id, at=env.at)
    fn(draft, command)
    if draft.events:
        settle(draft)
    return draft.events


@decider(AwardPoints)
def _award(draft: Draft, command: AwardPoints) -> None:
    draft.ensure_exists()
    draft.award(command.amount, command.reason, command.metadata)


@decider(DeductPoints)
def _deduct(draft: Draft, command: DeductPoints) -> None:
    if command.amount > draft.balance:
        raise InsufficientPoints(draft.balance, command.amount)
    draft.add(
        PointsDeducted(
            transaction_id=draft.new_id(),
            amount=command.amount,
            balance_after=draft.balance - command.amount,
            reason=command.reason,
            metadata=command.metadata,
        )
    )


def _register(state: ParticipantState | None, cmd: RegisterParticipant) -> list[Event]:
    if state is None:
        return [
            ParticipantRegistered(
                display_name=None if cmd.display_name is UNSET else cmd.display_name,
                avatar_url=None if cmd.avatar_url is UNSET else cmd.avatar_url,
                attributes={} if cmd.attributes in (UNSET, None) else dict(cmd.attributes),
            )
        ]
    attributes = cmd.attributes if cmd.attributes in (UNSET, None) else dict(cmd.attributes)
    return _changes(state, cmd.display_name, cmd.avatar_url, attributes)


def _update(state: ParticipantState, cmd: UpdateParticipant) -> list[Event]:
    attributes: Any = UNSET
    if cmd.attributes is not UNSET:
        attributes = merge_attributes(state.attributes, cmd.attributes or {})
        _bounded(attributes)
    return _changes(state, cmd.display_name, cmd.avatar_url, attributes)


def _bounded(attributes: dict[str, Any]) -> None:
    size = len(json.dumps(attributes, separators=(",", ":"), ensure_ascii=False).encode())
    if len(attributes) > MAX_MAP_KEYS or size > MAX_MAP_BYTES:
        raise AttributesTooLarge(
            f"after this change the participant would hold {len(attributes)} attributes, "
            f"{size} bytes as JSON; at most {MAX_MAP_KEYS} and {MAX_MAP_BYTES}"
        )


def merge_attributes(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Shallow JSON merge patch: keys in ``patch`` replace, keys set to null are removed."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _changes(
    state: ParticipantState, display_name: Any, avatar_url: Any, attributes: Any
) -> list[Event]:
    wanted = {"display_name": display_name, "avatar_url": avatar_url, "attributes": attributes}
    current = {
        "display_name": state.display_name,
        "avatar_url": state.avatar_url,
        "attributes": state.attributes,
    }
    changes = {k: v for k, v in wanted.items() if v is not UNSET and v != current[k]}
    if "attributes" in changes and changes["attributes"] is None:
        changes["attributes"] = {}
        if not current["attributes"]:
            del changes["attributes"]
    return [ParticipantProfileUpdated(changes=changes)] if changes else []

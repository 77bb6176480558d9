"""Pure decisions: given a participant's state and a command, the events that follow, or an error."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from schemas.events import (
    Event,
    ParticipantProfileUpdated,
    ParticipantRegistered,
    PointsAwarded,
    PointsDeducted,
)
from services.participants.commands import (
    UNSET,
    AwardPoints,
    Command,
    DeductPoints,
    RegisterParticipant,
    UpdateParticipant,
)


class DomainError(Exception):
    """A command that the rules refuse; nothing is written."""


class ParticipantNotFound(DomainError):
    def __init__(self, participant_id: str) -> None:
        super().__init__(f"Participant not found: {participant_id}")


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


@dataclass(frozen=True, slots=True)
class Ids:
    """Identifiers made outside the domain (the domain makes no uuids)."""

    transaction_id: str


def decide(state: ParticipantState | None, command: Command, ids: Ids) -> list[Event]:
    """Return the events ``command`` produces on ``state`` (None: the participant does not exist)."""
    if isinstance(command, RegisterParticipant):
        return _register(state, command)
    if isinstance(command, UpdateParticipant):
        if state is None:
            raise ParticipantNotFound(command.participant_id)
        return _update(state, command)
    if isinstance(command, AwardPoints):
        balance = state.balance if state else 0
        return [
            *_auto_create(state),
            PointsAwarded(
                transaction_id=ids.transaction_id,
                amount=command.amount,
                balance_after=balance + command.amount,
                reason=command.reason,
                metadata=command.metadata,
            ),
        ]
    if isinstance(command, DeductPoints):
        balance = state.balance if state else 0
        if command.amount > balance:
            raise InsufficientPoints(balance, command.amount)
        return [
            PointsDeducted(
                transaction_id=ids.transaction_id,
                amount=command.amount,
                balance_after=balance - command.amount,
                reason=command.reason,
                metadata=command.metadata,
            )
        ]
    raise TypeError(f"unknown command {command!r}")


def _auto_create(state: ParticipantState | None) -> list[Event]:
    return [ParticipantRegistered(auto_created=True)] if state is None else []


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
    return _changes(state, cmd.display_name, cmd.avatar_url, attributes)


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

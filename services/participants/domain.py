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
    attributes_after,
)
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


# A participant's attributes as a whole (each request's map is bounded at the validation boundary):
# PATCHes add keys, so without a bound the participant row, read and rewritten on every write,
# grows with history.
MAX_ATTRIBUTE_KEYS = 1_000
MAX_ATTRIBUTE_BYTES = 64 * 1024  # the map as compact UTF-8 JSON


class AttributesTooLarge(DomainError):
    """The change would leave the participant more attributes than a profile holds: 413."""

    def __init__(self, keys: int, size: int) -> None:
        super().__init__(
            f"attributes: a participant holds at most {MAX_ATTRIBUTE_KEYS} keys and "
            f"{MAX_ATTRIBUTE_BYTES} bytes (as JSON) of attributes; this change would leave "
            f"{keys} keys, {size} bytes. Remove keys (set them to null) first."
        )


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
    draft.award(
        command.amount,
        command.reason,
        command.metadata,
        multiplied=True,
        expires_at=command.expires_at,
    )


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
        attributes = {} if cmd.attributes in (UNSET, None) else dict(cmd.attributes)
        check_attribute_bounds({}, attributes)
        return [
            ParticipantRegistered(
                display_name=None if cmd.display_name is UNSET else cmd.display_name,
                avatar_url=None if cmd.avatar_url is UNSET else cmd.avatar_url,
                attributes=attributes,
            )
        ]
    # Registering again replaces the attributes (null: with none); UNSET leaves them.
    change = Attributes()
    if cmd.attributes is not UNSET:
        change = replacement(state.attributes, cmd.attributes or {})
    return _profile_event(state, cmd.display_name, cmd.avatar_url, change)


def _update(state: ParticipantState, cmd: UpdateParticipant) -> list[Event]:
    attributes = Attributes()
    if cmd.attributes not in (UNSET, None):
        attributes = merge_patch(state.attributes, cmd.attributes)
    return _profile_event(state, cmd.display_name, cmd.avatar_url, attributes)


@dataclass(frozen=True, slots=True)
class Attributes:
    """How an attribute map changes: emptied first (``replaced``), then keys removed and set."""

    replaced: bool = False
    set: dict[str, Any] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.replaced or bool(self.set) or bool(self.removed)


def merge_patch(current: dict[str, Any], patch: dict[str, Any]) -> Attributes:
    """Shallow JSON merge patch (RFC 7396 at the top level): a key set to null is removed, any
    other key replaces. Only the keys that change are kept, so a no-op patch is empty."""
    removed = [k for k, v in patch.items() if v is None and k in current]
    changed = {
        k: v
        for k, v in patch.items()
        if v is not None and (k not in current or not same(current[k], v))
    }
    return Attributes(set=changed, removed=removed)


def replacement(current: dict[str, Any], wanted: dict[str, Any]) -> Attributes:
    """The attributes become exactly ``wanted`` (null values kept, as a first registration does).

    Written as a delta (keys set and removed) when that is no longer than ``wanted``, else as a
    replacement by ``wanted``: either way the event is never longer than the request, and both
    fold to ``wanted``.
    """
    changed = {k: v for k, v in wanted.items() if k not in current or not same(current[k], v)}
    removed = [k for k in current if k not in wanted]
    if len(changed) + len(removed) <= len(wanted):
        return Attributes(set=changed, removed=removed)
    return Attributes(replaced=True, set=dict(wanted))


def same(a: Any, b: Any) -> bool:
    """JSON equality that tells 1, 1.0 and true apart (Python's == does not)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _profile_event(
    state: ParticipantState, display_name: Any, avatar_url: Any, attributes: Attributes
) -> list[Event]:
    """One ParticipantProfileUpdated with only what changes, or nothing when nothing does."""
    wanted = {"display_name": display_name, "avatar_url": avatar_url}
    current = {"display_name": state.display_name, "avatar_url": state.avatar_url}
    changes = {k: v for k, v in wanted.items() if v is not UNSET and not same(v, current[k])}
    if not changes and not attributes:
        return []
    event = ParticipantProfileUpdated(
        changes=changes,
        attributes_replaced=attributes.replaced,
        attributes_set=attributes.set,
        attributes_removed=attributes.removed,
    )
    if attributes:
        check_attribute_bounds(state.attributes, attributes_after(event, state.attributes))
    return [event]


def check_attribute_bounds(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Refuse a change that leaves more than MAX_ATTRIBUTE_KEYS keys or MAX_ATTRIBUTE_BYTES.

    A map already over a bound (written before the bound existed) may still shrink or change
    values: only growth past a bound is refused.
    """
    if len(after) > MAX_ATTRIBUTE_KEYS:
        if len(after) > len(before):
            raise AttributesTooLarge(len(after), json_size(after))
        return
    size = json_size(after)
    if size > MAX_ATTRIBUTE_BYTES and size > json_size(before):
        raise AttributesTooLarge(len(after), size)


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())

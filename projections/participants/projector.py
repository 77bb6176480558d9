"""Pure fold of participant commits into the participant row and row writes, with the version check.

Feature modules (``projections/participants/features``) register ``evolve`` for their events
(what the participant row becomes) and ``writer`` (rows of their own tables).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import singledispatch
from typing import Any

import orjson

from schemas.events import (
    Commit,
    Event,
    ParticipantErased,
    ParticipantProfileUpdated,
    ParticipantRegistered,
    PointsAwarded,
    PointsDeducted,
    PointsExpired,
    attributes_after,
)
from schemas.sections import fold

APPLIED, CONFLICT, DUPLICATE = "applied", "conflict", "duplicate"


@dataclass(frozen=True, slots=True)
class ParticipantRow:
    """The participant read model: profile fields, counters, engine sections and the version.

    ``sections`` holds each feature's state by name (``tier``, ``badges``, ``streaks``, ...).
    """

    tenant: str
    participant_id: str
    version: int = 0
    display_name: str | None = None
    avatar_url: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    balance: int = 0
    total_earned: int = 0
    total_spent: int = 0
    total_events: int = 0
    rewards_claimed: int = 0
    is_active: bool = True
    created_at: str = ""
    last_seen_at: str = ""
    sections: dict[str, Any] = field(default_factory=dict)

    def section(self, name: str, default: Any = None) -> Any:
        return self.sections.get(name, default)

    def with_section(self, name: str, value: Any) -> ParticipantRow:
        return replace(self, sections={**self.sections, name: value})


_FIELDS = tuple(f.name for f in fields(ParticipantRow))
_set = object.__setattr__


def replace(row: ParticipantRow, **changes: Any) -> ParticipantRow:
    """``row`` with ``changes``: ``dataclasses.replace`` for this one class, without its cost.

    The fold replaces the row once per event and once per commit, and ``dataclasses.replace``
    (which looks up the fields and runs ``__init__`` with keywords each time) was a sixth of
    the projector's time. The row has no ``__post_init__`` and no field with ``init=False``,
    so a copy of every slot plus the changes is the same row; an unknown name raises.
    """
    new = object.__new__(ParticipantRow)
    for name in _FIELDS:
        _set(new, name, getattr(row, name))
    for name, value in changes.items():
        _set(new, name, value)
    return new


@dataclass(frozen=True, slots=True)
class Write:
    """One row change the fold asks the store to make: a registered statement and its values."""

    statement: str
    params: tuple[Any, ...]


def history(statement: str, commit: Commit, idx: int, *values: Any) -> Write:
    """A row of a per-participant history table: keyed by the commit's version and the event's
    position in it, so a replay writes the same key."""
    return Write(
        statement, (commit.tenant, commit.participant_id, commit.expected_version + 1, idx, *values)
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """What applying one commit did: its status, the new row and the row writes it adds."""

    status: str
    row: ParticipantRow | None
    writes: tuple[Write, ...] = ()


def apply_commit(
    row: ParticipantRow | None, commit: Commit, *, key_used: bool, writes: bool = True
) -> Verdict:
    """Apply ``commit`` if it was decided on the row's version and its idempotency key is new.

    Deterministic in (row, commit, key_used), so replaying the log repeats every verdict.
    ``writes=False`` folds the row only (reading the past needs no rows of other tables).
    """
    if key_used:
        return Verdict(DUPLICATE, row)
    version = row.version if row is not None else 0
    if commit.expected_version != version:
        return Verdict(CONFLICT, row)
    if not commit.events:  # a keyed command that changed nothing: only its key is recorded
        return Verdict(APPLIED, row)
    current = row or ParticipantRow(
        commit.tenant, commit.participant_id, created_at=commit.recorded_at
    )
    found: list[Write] = []
    for idx, event in enumerate(commit.events):
        current = evolve(event, current, commit)
        if writes:
            found.extend(writes_for(event, current, commit, idx))
    seen = current.last_seen_at
    if not seen or not all(type(e) in NOT_ACTIVITY for e in commit.events):
        seen = commit.recorded_at
    current = replace(current, version=version + 1, last_seen_at=seen)
    return Verdict(APPLIED, current, tuple(found))


# Events Gamify decides on its own (the scheduler's expiry, an admin's erasure): they change the
# participant but are not its activity, so they leave last_seen_at ("latest accepted command").
NOT_ACTIVITY: frozenset[type[Event]] = frozenset({PointsExpired, ParticipantErased})


@singledispatch
def evolve(event: Event, row: ParticipantRow, commit: Commit) -> ParticipantRow:
    """Fold one event into the row: engine events change its sections (schemas.sections)."""
    sections = fold(event, row.sections, commit.recorded_at)
    return row if sections is row.sections else replace(row, sections=sections)


Writer = Callable[[Any, ParticipantRow, Commit, int], list[Write]]
# Event type -> every feature's writer for it (several features may write rows for one event).
WRITERS: dict[type[Event], list[Writer]] = {}


def writer(event_type: type[Event]) -> Callable[[Writer], Writer]:
    """Register ``fn(event, row, commit, idx)`` as one more writer of ``event_type``."""

    def register(fn: Writer) -> Writer:
        WRITERS.setdefault(event_type, []).append(fn)
        return fn

    return register


def writes_for(event: Event, row: ParticipantRow, commit: Commit, idx: int) -> list[Write]:
    """Rows of other tables one event writes (``row`` is the participant after the event)."""
    return [w for fn in WRITERS.get(type(event), ()) for w in fn(event, row, commit, idx)]


@evolve.register
def _(event: ParticipantRegistered, row: ParticipantRow, commit: Commit) -> ParticipantRow:
    return replace(
        row,
        display_name=event.display_name,
        avatar_url=event.avatar_url,
        attributes=dict(event.attributes),
        created_at=commit.recorded_at,
    )


@evolve.register
def _(event: ParticipantProfileUpdated, row: ParticipantRow, commit: Commit) -> ParticipantRow:
    allowed = {"display_name", "avatar_url"}
    fields = {k: v for k, v in event.changes.items() if k in allowed}
    if event.attributes_replaced or event.attributes_set or event.attributes_removed:
        fields["attributes"] = attributes_after(event, row.attributes)
    return replace(row, **fields)


@evolve.register
def _(event: PointsAwarded, row: ParticipantRow, commit: Commit) -> ParticipantRow:
    return replace(
        row,
        balance=row.balance + event.amount,
        total_earned=row.total_earned + event.amount,
        sections=fold(event, row.sections, commit.recorded_at),  # an expiring credit: a lot
    )


@evolve.register
def _(event: PointsDeducted, row: ParticipantRow, commit: Commit) -> ParticipantRow:
    return replace(
        row,
        balance=row.balance - event.amount,
        total_spent=row.total_spent + event.amount,
        sections=fold(event, row.sections, commit.recorded_at),  # consumes lots first
    )


@evolve.register
def _(event: PointsExpired, row: ParticipantRow, commit: Commit) -> ParticipantRow:
    # Expiry is not spending and never lowers what was earned (gamify-api.md 3.6).
    return replace(
        row,
        balance=row.balance - event.amount,
        sections=fold(event, row.sections, commit.recorded_at),
    )


@writer(PointsAwarded)
def _ledger_award(
    event: PointsAwarded, row: ParticipantRow, commit: Commit, idx: int
) -> list[Write]:
    return [_ledger(commit, idx, event.transaction_id, "award", event.amount, event)]


@writer(PointsDeducted)
def _ledger_deduct(
    event: PointsDeducted, row: ParticipantRow, commit: Commit, idx: int
) -> list[Write]:
    return [_ledger(commit, idx, event.transaction_id, "deduct", -event.amount, event)]


@writer(PointsExpired)
def _ledger_expire(
    event: PointsExpired, row: ParticipantRow, commit: Commit, idx: int
) -> list[Write]:
    metadata = {"lot_id": event.lot_id, "expires_at": event.expires_at}
    return [
        history(
            "ledger_insert",
            commit,
            idx,
            event.transaction_id,
            "expire",
            -event.amount,
            event.balance_after,
            "expired",
            orjson.dumps(metadata).decode(),
            commit.recorded_at,
        )
    ]


def _ledger(
    commit: Commit, idx: int, tx: str, kind: str, amount: int, event: PointsAwarded | PointsDeducted
) -> Write:
    return history(
        "ledger_insert",
        commit,
        idx,
        tx,
        kind,
        amount,
        event.balance_after,
        event.reason,
        orjson.dumps(event.metadata).decode(),
        commit.recorded_at,
    )

"""Pure fold of commits into participant rows and ledger entries, with the version check."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import singledispatch
from typing import Any

from schemas.events import (
    Commit,
    Event,
    ParticipantProfileUpdated,
    ParticipantRegistered,
    PointsAwarded,
    PointsDeducted,
)

APPLIED, CONFLICT, DUPLICATE = "applied", "conflict", "duplicate"


@dataclass(frozen=True, slots=True)
class ParticipantRow:
    """The participant read model: profile fields, counters and the version."""

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


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One points transaction; ``amount`` is negative for debits."""

    transaction_id: str
    kind: str
    amount: int
    balance_after: int
    reason: str | None
    metadata: dict[str, Any]
    created_at: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """What applying one commit did: its status, the new row and the ledger entries it adds."""

    status: str
    row: ParticipantRow | None
    ledger: tuple[LedgerEntry, ...] = ()


def apply_commit(row: ParticipantRow | None, commit: Commit, *, key_used: bool) -> Verdict:
    """Apply ``commit`` if it was decided on the row's version and its idempotency key is new.

    Deterministic in (row, commit, key_used), so replaying the log repeats every verdict.
    """
    if key_used:
        return Verdict(DUPLICATE, row)
    version = row.version if row is not None else 0
    if commit.expected_version != version:
        return Verdict(CONFLICT, row)
    current = row or ParticipantRow(
        commit.tenant, commit.participant_id, created_at=commit.recorded_at
    )
    ledger: list[LedgerEntry] = []
    for event in commit.events:
        current = evolve(event, current, commit.recorded_at)
        entry = ledger_entry(event, commit.recorded_at)
        if entry is not None:
            ledger.append(entry)
    current = replace(current, version=version + 1, last_seen_at=commit.recorded_at)
    return Verdict(APPLIED, current, tuple(ledger))


@singledispatch
def evolve(event: Event, row: ParticipantRow, at: str) -> ParticipantRow:
    """Fold one event into the row; unknown event types leave it unchanged."""
    return row


@evolve.register
def _(event: ParticipantRegistered, row: ParticipantRow, at: str) -> ParticipantRow:
    return replace(
        row,
        display_name=event.display_name,
        avatar_url=event.avatar_url,
        attributes=dict(event.attributes),
        created_at=at,
    )


@evolve.register
def _(event: ParticipantProfileUpdated, row: ParticipantRow, at: str) -> ParticipantRow:
    allowed = {"display_name", "avatar_url", "attributes"}
    return replace(row, **{k: v for k, v in event.changes.items() if k in allowed})


@evolve.register
def _(event: PointsAwarded, row: ParticipantRow, at: str) -> ParticipantRow:
    return replace(
        row, balance=row.balance + event.amount, total_earned=row.total_earned + event.amount
    )


@evolve.register
def _(event: PointsDeducted, row: ParticipantRow, at: str) -> ParticipantRow:
    return replace(
        row, balance=row.balance - event.amount, total_spent=row.total_spent + event.amount
    )


def ledger_entry(event: Event, at: str) -> LedgerEntry | None:
    """The ledger line an event writes, if it moves points."""
    if isinstance(event, PointsAwarded):
        return LedgerEntry(
            event.transaction_id,
            "award",
            event.amount,
            event.balance_after,
            event.reason,
            event.metadata,
            at,
        )
    if isinstance(event, PointsDeducted):
        return LedgerEntry(
            event.transaction_id,
            "deduct",
            -event.amount,
            event.balance_after,
            event.reason,
            event.metadata,
            at,
        )
    return None

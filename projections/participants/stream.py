"""The participant stream projection: participant rows of one batch, folded with the version check.

Each participant of a batch has one ``Draft`` (projections.participants.projector): loaded from
the database or new, folded in place commit after commit, its columns written once at flush. A
batch that fails is rolled back and applied again from the database, so a draft left half-folded
by an error is never written.
"""

from __future__ import annotations

from typing import Any

import orjson

from projections.participants.projector import (
    APPLIED,
    Draft,
    ParticipantRow,
    Write,
    check,
    fold_into,
    freeze,
    new_draft,
)
from projections.participants.schema import PARTICIPANT_COLUMNS
from projections.participants.snapshots import snapshot
from projections.streams import SelectIn, register_stream
from schemas.events import PARTICIPANT, Commit


class ParticipantStream:
    """Participant commits of one batch: rows by (tenant, participant id)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], Draft | None] = {}
        self.dirty: set[tuple[str, str]] = set()

    def load(self, select_in: SelectIn, commits: list[Commit]) -> None:
        people = sorted({(c.tenant, c.participant_id) for c in commits})
        self.rows.update(dict.fromkeys(people))
        found = select_in(
            f"SELECT {PARTICIPANT_COLUMNS} FROM {{participants}} "  # noqa: S608
            "WHERE (tenant, participant_id) IN",
            people,
        )
        for row in map(draft_from_db, found):
            self.rows[(row.tenant, row.participant_id)] = row

    def apply(self, commit: Commit, *, key_used: bool) -> tuple[str, list[Write]]:
        """``apply_commit``'s verdict and writes, folding the participant's draft in place."""
        ident = (commit.tenant, commit.participant_id)
        draft = self.rows.get(ident)
        status = check(draft, commit, key_used=key_used)
        if status is None:
            writes: list[Write] = []
            draft = fold_into(draft or new_draft(commit), commit, writes)
            writes += snapshot(draft, commit, row_to_db)
            self.rows[ident] = draft
            self.dirty.add(ident)
            return APPLIED, writes
        if status == APPLIED and draft is not None:  # no events: the row is written as it was
            self.dirty.add(ident)
        return status, []

    def flush(self) -> list[Write]:
        return [
            Write("participant_upsert", row_to_db(r))
            for ident in sorted(self.dirty)
            if (r := self.rows[ident]) is not None
        ]


def row_to_db(row: ParticipantRow) -> tuple[Any, ...]:
    return (
        row.tenant,
        row.participant_id,
        row.version,
        row.display_name,
        row.avatar_url,
        orjson.dumps(row.attributes).decode(),
        row.balance,
        row.total_earned,
        row.total_spent,
        row.total_events,
        row.rewards_claimed,
        row.is_active,
        row.created_at,
        row.last_seen_at,
        orjson.dumps(row.sections, option=orjson.OPT_SORT_KEYS).decode(),
    )


def row_from_db(found: tuple[Any, ...]) -> ParticipantRow:
    """The row of the participants table's columns (``PARTICIPANT_COLUMNS``, in order)."""
    return freeze(draft_from_db(found))


def draft_from_db(found: tuple[Any, ...]) -> Draft:
    """``row_from_db`` as a draft, to be folded."""
    new = object.__new__(Draft)
    new.tenant = found[0]
    new.participant_id = found[1]
    new.version = found[2]
    new.display_name = found[3]
    new.avatar_url = found[4]
    new.attributes = orjson.loads(found[5])
    new.balance = found[6]
    new.total_earned = found[7]
    new.total_spent = found[8]
    new.total_events = found[9]
    new.rewards_claimed = found[10]
    new.is_active = bool(found[11])
    new.created_at = found[12]
    new.last_seen_at = found[13]
    new.sections = orjson.loads(found[14])
    return new


register_stream(PARTICIPANT, ParticipantStream)

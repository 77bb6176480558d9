"""The participant stream projection: participant rows of one batch, folded with the version check."""

from __future__ import annotations

from typing import Any

import orjson

from projections.participants.projector import APPLIED, ParticipantRow, Write, apply_commit
from projections.participants.schema import PARTICIPANT_COLUMNS
from projections.participants.snapshots import snapshot
from projections.streams import SelectIn, register_stream
from schemas.events import PARTICIPANT, Commit


class ParticipantStream:
    """Participant commits of one batch: rows by (tenant, participant id)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], ParticipantRow | None] = {}
        self.dirty: set[tuple[str, str]] = set()

    def load(self, select_in: SelectIn, commits: list[Commit]) -> None:
        people = sorted({(c.tenant, c.participant_id) for c in commits})
        self.rows.update(dict.fromkeys(people))
        found = select_in(
            f"SELECT {PARTICIPANT_COLUMNS} FROM {{participants}} "  # noqa: S608
            "WHERE (tenant, participant_id) IN",
            people,
        )
        for row in map(row_from_db, found):
            self.rows[(row.tenant, row.participant_id)] = row

    def apply(self, commit: Commit, *, key_used: bool) -> tuple[str, list[Write]]:
        ident = (commit.tenant, commit.participant_id)
        verdict = apply_commit(self.rows.get(ident), commit, key_used=key_used)
        writes = list(verdict.writes)
        if verdict.status == APPLIED and verdict.row is not None:
            if commit.events:  # a commit without events leaves the version as it was
                writes += snapshot(verdict.row, commit, row_to_db)
            self.rows[ident] = verdict.row
            self.dirty.add(ident)
        return verdict.status, writes

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
    return ParticipantRow(
        tenant=found[0],
        participant_id=found[1],
        version=found[2],
        display_name=found[3],
        avatar_url=found[4],
        attributes=orjson.loads(found[5]),
        balance=found[6],
        total_earned=found[7],
        total_spent=found[8],
        total_events=found[9],
        rewards_claimed=found[10],
        is_active=bool(found[11]),
        created_at=found[12],
        last_seen_at=found[13],
        sections=orjson.loads(found[14]),
    )


register_stream(PARTICIPANT, ParticipantStream)

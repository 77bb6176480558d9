"""Tier history: one row per tier change (the participant row's ``tier`` section is the current)."""

from __future__ import annotations

from projections.participants.projector import ParticipantRow, Write, history, writer
from projections.participants.schema import Table, register_statement, register_table
from schemas.events import Commit, TierChanged

register_table(
    Table(
        "tier_history",
        """CREATE TABLE IF NOT EXISTS {tier_history} (
    tenant TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    level INTEGER NOT NULL,
    previous_code TEXT,
    manual BOOLEAN NOT NULL,
    achieved_at TEXT NOT NULL,
    PRIMARY KEY (tenant, participant_id, version, idx))""",
        ("tenant", "participant_id", "version", "idx"),
        per_participant=True,
    )
)

INSERT = register_statement(
    "tier_history_insert",
    (
        "INSERT INTO {tier_history} (tenant, participant_id, version, idx, code, name, level, "
        "previous_code, manual, achieved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ),
)


@writer(TierChanged)
def _write(event: TierChanged, row: ParticipantRow, commit: Commit, idx: int) -> list[Write]:
    return [
        history(
            INSERT,
            commit,
            idx,
            event.code,
            event.name,
            event.level,
            event.previous_code,
            event.manual,
            commit.recorded_at,
        )
    ]

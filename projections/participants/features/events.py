"""Event history: every tracked event, for GET /participants/{pid}/events; the total count."""

from __future__ import annotations

import orjson

from projections.participants.projector import (
    Draft,
    ParticipantRow,
    Write,
    evolver,
    history,
    writer,
)
from projections.participants.schema import Table, register_statement, register_table
from schemas.events import Commit, EventTracked

register_table(
    Table(
        "event_history",
        """CREATE TABLE IF NOT EXISTS {event_history} (
    tenant TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    event_name TEXT NOT NULL,
    properties TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (tenant, participant_id, version, idx))""",
        ("tenant", "participant_id", "version", "idx"),
        per_participant=True,
    )
)

INSERT = register_statement(
    "event_history_insert",
    (
        "INSERT INTO {event_history} (tenant, participant_id, version, idx, event_id, event_name, "
        "properties, occurred_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ),
)


@evolver(EventTracked)
def _count(event: EventTracked, row: Draft, commit: Commit) -> None:
    row.total_events += 1  # the counts per name and first/last times: schemas.sections


@writer(EventTracked)
def _write(event: EventTracked, row: ParticipantRow, commit: Commit, idx: int) -> tuple[Write, ...]:
    return (
        history(
            INSERT,
            commit,
            idx,
            event.event_id,
            event.event_name,
            orjson.dumps(event.properties).decode(),
            event.occurred_at,
            commit.recorded_at,
        ),
    )

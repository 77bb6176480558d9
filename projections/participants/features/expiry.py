"""Point expiry, read side: when each participant's next expiring credit falls due.

``point_expiry`` holds one row per participant who ever had an expiring credit, with the
soonest ``expires_at`` of their open lots (schemas.sections ``point_lots``), or NULL when none
is open. The scheduler reads the due rows through its index (projections/participants/
expiry_queries.py). Written from the participant row after the event, so a replay writes the
same rows; the PointsExpired ledger row is written by projections/participants/projector.py.
"""

from __future__ import annotations

from typing import Any

from projections.participants.projector import ParticipantRow, Write, writer
from projections.participants.schema import (
    Table,
    register_merge,
    register_statement,
    register_table,
)
from schemas.events import Commit, PointsAwarded, PointsDeducted, PointsExpired
from schemas.sections import LOTS

register_table(
    Table(
        "point_expiry",
        """CREATE TABLE IF NOT EXISTS {point_expiry} (
    tenant TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    next_expires_at TEXT,
    PRIMARY KEY (tenant, participant_id))""",
        ("tenant", "participant_id"),
        per_participant=True,
        indexes=(
            "CREATE INDEX IF NOT EXISTS {point_expiry}_due ON {point_expiry} (next_expires_at)",
        ),
    )
)

UPSERT = register_statement(
    "point_expiry_upsert",
    (
        "INSERT INTO {point_expiry} (tenant, participant_id, next_expires_at) VALUES (?, ?, ?) "
        "ON CONFLICT (tenant, participant_id) DO UPDATE SET "
        "next_expires_at = excluded.next_expires_at"
    ),
)


def _last_per_participant(params: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """A batch's upserts of one participant: only the last one counts."""
    return list({p[:2]: p for p in params}.values())


register_merge(UPSERT, _last_per_participant)


def _next(row: ParticipantRow, commit: Commit) -> list[Write]:
    lots = row.sections.get(LOTS)
    if lots is None:  # never had an expiring credit: no row, no write
        return []
    soonest = min((lot["expires_at"] for lot in lots), default=None)
    return [Write(UPSERT, (commit.tenant, commit.participant_id, soonest))]


@writer(PointsAwarded)
def _award(event: PointsAwarded, row: ParticipantRow, commit: Commit, idx: int) -> list[Write]:
    return _next(row, commit) if event.expires_at else []


@writer(PointsDeducted)
def _spend(event: PointsDeducted, row: ParticipantRow, commit: Commit, idx: int) -> list[Write]:
    return _next(row, commit)


@writer(PointsExpired)
def _expire(event: PointsExpired, row: ParticipantRow, commit: Commit, idx: int) -> list[Write]:
    return _next(row, commit)

"""Snapshots of participant rows every SNAPSHOT_EVERY versions, for reading the past quickly.

The participant stream writes the row as it stood after versions 500, 1000, ... (the exact
version, whatever the batching, so a replay writes the same rows). ``projections.past`` folds
a participant as of a moment from the latest snapshot recorded at or before it, instead of
from its first commit: at most SNAPSHOT_EVERY - 1 commits are read and folded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from projections.participants.projector import ParticipantRow, Write
from projections.participants.schema import Table, register_statement, register_table
from schemas.events import Commit

SNAPSHOT_EVERY = 500

register_table(
    Table(
        "participant_snapshots",
        """CREATE TABLE IF NOT EXISTS {participant_snapshots} (
    tenant TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    commit_id TEXT NOT NULL,
    row TEXT NOT NULL,
    PRIMARY KEY (tenant, participant_id, version))""",
        ("tenant", "participant_id", "version"),
        per_participant=True,
    )
)

INSERT = register_statement(
    "snapshot_insert",
    (
        "INSERT INTO {participant_snapshots} (tenant, participant_id, version, recorded_at, "
        "commit_id, row) VALUES (?, ?, ?, ?, ?, ?)"
    ),
)


def snapshot(
    row: ParticipantRow, commit: Commit, to_db: Callable[[ParticipantRow], tuple[Any, ...]]
) -> list[Write]:
    """The snapshot write of ``row`` just after ``commit`` applied, at every SNAPSHOT_EVERY-th
    version; none otherwise. ``row`` is stored as ``to_db`` gives it (the participants table's
    columns), as a JSON array."""
    if row.version % SNAPSHOT_EVERY:
        return []
    values = orjson.dumps(to_db(row)).decode()
    return [
        Write(
            INSERT,
            (
                row.tenant,
                row.participant_id,
                row.version,
                commit.recorded_at,
                commit.commit_id,
                values,
            ),
        )
    ]

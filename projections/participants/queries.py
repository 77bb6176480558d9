"""Read functions over the participant read models, for the GET endpoints and command handlers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from eventsourcing.sqlite import SQLiteDatastore

from projections.participants.projector import ParticipantRow
from projections.participants.schema import PARTICIPANT_COLUMNS
from projections.participants.store import row_from_db, tracking_name

__all__ = ["LedgerPage", "OutcomeRow", "ParticipantQueries", "ParticipantRow"]


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    """The projector's verdict on one commit."""

    commit_id: str
    status: str
    command: str
    events: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class LedgerPage:
    """One page of a participant's points transactions, newest first."""

    entries: list[dict[str, Any]]
    total: int


class ParticipantQueries:
    """Read-only access to the participant read models."""

    def __init__(self, datastore: SQLiteDatastore) -> None:
        self.datastore = datastore

    def participant(self, tenant: str, participant_id: str) -> ParticipantRow | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT {PARTICIPANT_COLUMNS} FROM participants "  # noqa: S608
                "WHERE tenant = ? AND participant_id = ?",
                (tenant, participant_id),
            )
            found = c.fetchone()
        return row_from_db(found) if found else None

    def transactions(
        self, tenant: str, participant_id: str, page: int, page_size: int
    ) -> LedgerPage:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT COUNT(*) FROM points_ledger WHERE tenant = ? AND participant_id = ?",
                (tenant, participant_id),
            )
            total = c.fetchone()[0]
            c.execute(
                "SELECT transaction_id, kind, amount, balance_after, reason, metadata, created_at "
                "FROM points_ledger WHERE tenant = ? AND participant_id = ? "
                "ORDER BY version DESC, idx DESC LIMIT ? OFFSET ?",
                (tenant, participant_id, page_size, (page - 1) * page_size),
            )
            found = c.fetchall()
        entries = [
            {
                "id": r[0],
                "type": r[1],
                "amount": r[2],
                "balance_after": r[3],
                "reason": r[4],
                "metadata": orjson.loads(r[5]),
                "created_at": r[6],
            }
            for r in found
        ]
        return LedgerPage(entries, total)

    def outcome(self, commit_id: str) -> OutcomeRow | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT commit_id, status, command, events FROM commit_outcomes WHERE commit_id = ?",
                (commit_id,),
            )
            found = c.fetchone()
        return _outcome(found) if found else None

    def idempotent(self, tenant: str, participant_id: str, key: str) -> OutcomeRow | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT o.commit_id, o.status, o.command, o.events FROM idempotency_keys k "
                "JOIN commit_outcomes o ON o.commit_id = k.commit_id "
                "WHERE k.tenant = ? AND k.participant_id = ? AND k.idempotency_key = ?",
                (tenant, participant_id, key),
            )
            found = c.fetchone()
        return _outcome(found) if found else None

    def next_offset(self, topic: str, partition: int) -> int | None:
        """The projector's position on one partition (last applied offset + 1)."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT notification_id FROM tracking WHERE application_name = ?",
                (tracking_name(topic, partition),),
            )
            found = c.fetchone()
        return found[0] if found else None


def _outcome(found: Any) -> OutcomeRow:
    return OutcomeRow(found[0], found[1], found[2], orjson.loads(found[3]) if found[3] else [])

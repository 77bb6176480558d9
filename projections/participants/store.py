"""Apply a batch of log records to the participant read models and the tracking row, atomically."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import orjson
from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore, SQLiteTrackingRecorder

from projections.participants.projector import APPLIED, ParticipantRow, Verdict, apply_commit
from projections.participants.schema import PARTICIPANT_COLUMNS, TABLES
from schemas.codec import CodecError, decode, encode_event
from schemas.events import Commit
from schemas.log import LogRecord

logger = logging.getLogger(__name__)

PROJECTION = "participants"


def tracking_name(topic: str, partition: int) -> str:
    """The tracking recorder's application name for one partition of one topic."""
    return f"{PROJECTION}:{topic}:{partition}"


@dataclass(slots=True)
class BatchStats:
    """Counts of what one batch did."""

    applied: int = 0
    rejected: int = 0
    redelivered: int = 0
    invalid: int = 0


class SqliteParticipantStore(SQLiteTrackingRecorder):
    """Participant read models in SQLite; rows and tracking change in one transaction."""

    def __init__(self, datastore: SQLiteDatastore) -> None:
        super().__init__(datastore)

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(), *TABLES]

    def next_offsets(self, topic: str, partitions: list[int] | tuple[int, ...]) -> dict[int, int]:
        """The next offset to read per partition, for partitions that have a position."""
        with self.datastore.transaction(commit=False) as c:
            found = {p: self._max_tracking_id(tracking_name(topic, p), c) for p in partitions}
        return {p: n for p, n in found.items() if n is not None}

    def apply_batch(self, topic: str, partition: int, records: list[LogRecord]) -> BatchStats:
        """Fold ``records`` (one partition, ascending offsets) into the read models.

        Records below the stored position are re-deliveries and are skipped; the new position is
        written with the rows, so a crash anywhere neither loses nor doubles a commit.
        """
        stats = BatchStats()
        with self.datastore.transaction(commit=True) as c:
            next_offset = self._max_tracking_id(tracking_name(topic, partition), c) or 0
            fresh = [r for r in records if r.offset >= next_offset]
            stats.redelivered = len(records) - len(fresh)
            if not fresh:
                return stats
            batch = _Batch(c)
            for record in fresh:
                self._apply_record(batch, topic, record, stats)
            batch.flush()
            self._insert_tracking(
                c, Tracking(tracking_name(topic, partition), fresh[-1].offset + 1)
            )
        return stats

    def _apply_record(
        self, batch: _Batch, topic: str, record: LogRecord, stats: BatchStats
    ) -> None:
        try:
            commit = decode(record.value)
        except CodecError as exc:
            logger.error(
                "skipping unreadable record %s/%s/%s: %s",
                topic,
                record.partition,
                record.offset,
                exc,
            )
            batch.reject_record(topic, record, str(exc))
            stats.invalid += 1
            return
        if batch.seen(commit.commit_id):
            stats.redelivered += 1
            return
        row = batch.row(commit.tenant, commit.participant_id)
        key = commit.causation.idempotency_key
        key_used = key is not None and batch.key_owner(commit, key) is not None
        verdict = apply_commit(row, commit, key_used=key_used)
        batch.record(commit, verdict, record)
        if verdict.status == APPLIED:
            stats.applied += 1
        else:
            stats.rejected += 1


class _Batch:
    """Rows read once and written once per batch, in the transaction of ``apply_batch``."""

    def __init__(self, c: SQLiteCursor) -> None:
        self.c = c
        self.rows: dict[tuple[str, str], ParticipantRow | None] = {}
        self.dirty: set[tuple[str, str]] = set()
        self.keys: dict[tuple[str, str, str], str] = {}
        self.commit_ids: set[str] = set()
        self.ledger: list[tuple[Any, ...]] = []
        self.outcomes: list[tuple[Any, ...]] = []
        self.new_keys: list[tuple[str, str, str, str]] = []

    def row(self, tenant: str, pid: str) -> ParticipantRow | None:
        if (tenant, pid) not in self.rows:
            self.c.execute(
                f"SELECT {PARTICIPANT_COLUMNS} FROM participants "  # noqa: S608
                "WHERE tenant = ? AND participant_id = ?",
                (tenant, pid),
            )
            found = self.c.fetchone()
            self.rows[(tenant, pid)] = row_from_db(found) if found else None
        return self.rows[(tenant, pid)]

    def seen(self, commit_id: str) -> bool:
        if commit_id in self.commit_ids:
            return True
        self.c.execute("SELECT 1 FROM commit_outcomes WHERE commit_id = ?", (commit_id,))
        return self.c.fetchone() is not None

    def key_owner(self, commit: Commit, key: str) -> str | None:
        ident = (commit.tenant, commit.participant_id, key)
        if ident not in self.keys:
            self.c.execute(
                "SELECT commit_id FROM idempotency_keys "
                "WHERE tenant = ? AND participant_id = ? AND idempotency_key = ?",
                ident,
            )
            found = self.c.fetchone()
            if found is None:
                return None
            self.keys[ident] = found[0]
        return self.keys[ident]

    def record(self, commit: Commit, verdict: Verdict, record: LogRecord) -> None:
        self.commit_ids.add(commit.commit_id)
        events = None
        if verdict.status == APPLIED and verdict.row is not None:
            ident = (commit.tenant, commit.participant_id)
            self.rows[ident] = verdict.row
            self.dirty.add(ident)
            events = orjson.dumps([encode_event(e) for e in commit.events]).decode()
            for idx, entry in enumerate(verdict.ledger):
                self.ledger.append(
                    (
                        *ident,
                        verdict.row.version,
                        idx,
                        entry.transaction_id,
                        entry.kind,
                        entry.amount,
                        entry.balance_after,
                        entry.reason,
                        orjson.dumps(entry.metadata).decode(),
                        entry.created_at,
                    )
                )
            key = commit.causation.idempotency_key
            if key is not None:
                self.keys[(*ident, key)] = commit.commit_id
                self.new_keys.append((*ident, key, commit.commit_id))
        self.outcomes.append(
            (
                commit.commit_id,
                commit.tenant,
                commit.participant_id,
                verdict.status,
                commit.causation.command,
                events,
                record.partition,
                record.offset,
            )
        )

    def reject_record(self, topic: str, record: LogRecord, error: str) -> None:
        self.c.execute(
            "INSERT INTO rejected_records (topic, log_partition, log_offset, error) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (topic, record.partition, record.offset, error),
        )

    def flush(self) -> None:
        rows = [row_to_db(r) for k in self.dirty if (r := self.rows[k]) is not None]
        self.c.executemany(
            f"INSERT INTO participants ({PARTICIPANT_COLUMNS}) "  # noqa: S608
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (tenant, participant_id) DO UPDATE SET "
            "version = excluded.version, display_name = excluded.display_name, "
            "avatar_url = excluded.avatar_url, attributes = excluded.attributes, "
            "balance = excluded.balance, total_earned = excluded.total_earned, "
            "total_spent = excluded.total_spent, total_events = excluded.total_events, "
            "rewards_claimed = excluded.rewards_claimed, is_active = excluded.is_active, "
            "created_at = excluded.created_at, last_seen_at = excluded.last_seen_at",
            rows,
        )
        self.c.executemany(
            "INSERT INTO points_ledger (tenant, participant_id, version, idx, transaction_id, "
            "kind, amount, balance_after, reason, metadata, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self.ledger,
        )
        self.c.executemany(
            "INSERT INTO commit_outcomes (commit_id, tenant, participant_id, status, command, "
            "events, log_partition, log_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            self.outcomes,
        )
        self.c.executemany(
            "INSERT INTO idempotency_keys (tenant, participant_id, idempotency_key, commit_id) "
            "VALUES (?, ?, ?, ?)",
            self.new_keys,
        )


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
    )


def row_from_db(found: Any) -> ParticipantRow:
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
    )

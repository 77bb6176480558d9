"""Apply a batch of log records to the participant read models and the tracking row, atomically."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder

from projections.db import Database, rows
from projections.participants.projector import APPLIED, ParticipantRow, Verdict, apply_commit
from projections.participants.schema import CREATE_TABLES, PARTICIPANT_COLUMNS, table_names
from schemas.codec import CodecError, decode, encode_event
from schemas.events import Commit
from schemas.log import LogRecord

logger = logging.getLogger(__name__)

PROJECTION = "participants"
CHUNK = 300  # keys per IN (...) list


def tracking_name(topic: str, partition: int, suffix: str = "") -> str:
    """The tracking recorder's application name for one partition of one topic."""
    return f"{PROJECTION}{suffix}:{topic}:{partition}"


@dataclass(slots=True)
class BatchStats:
    """Counts of what one batch did."""

    applied: int = 0
    rejected: int = 0
    redelivered: int = 0
    invalid: int = 0


class ParticipantStore:
    """Participant read models; rows and the tracking position change in one transaction.

    Mixed into an eventsourcing tracking recorder (SQLite or PostgreSQL), whose tracking row is
    the projector's position: ``notification_id`` holds the partition's next offset.
    """

    recorder_kwargs: dict[str, Any] = {}

    def __init__(
        self, db: Database, *, suffix: str = "", only: Callable[[Commit], bool] | None = None
    ) -> None:
        self.db = db
        self.suffix = suffix
        self.only = only  # a repair folds only some participants' commits
        self.names = table_names(suffix)
        super().__init__(db.datastore, **self.recorder_kwargs)  # type: ignore[call-arg]

    def sql(self, text: str) -> str:
        """``text`` with this store's table names and the driver's placeholders."""
        return self.db.sql(text.format_map(self.names))

    def create_table(self) -> None:
        super().create_table()  # type: ignore[misc]
        with self.db.transaction(commit=True) as c:
            for statement in CREATE_TABLES:
                c.execute(statement.format_map(self.names))

    def next_offsets(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        """The next offset to read per partition, for partitions that have a position."""
        with self.db.transaction(commit=False) as c:
            found = {
                p: self._max_tracking_id(tracking_name(topic, p, self.suffix), c)
                for p in partitions
            }
        return {p: n for p, n in found.items() if n is not None}

    def apply_batch(self, topic: str, partition: int, records: list[LogRecord]) -> BatchStats:
        """Fold ``records`` (one partition, ascending offsets) into the read models.

        Records below the stored position are re-deliveries and are skipped; the new position is
        written with the rows, so a crash anywhere neither loses nor doubles a commit.
        """
        stats = BatchStats()
        with self.db.transaction(commit=True) as c:
            next_offset = self.lock_position(c, topic, partition)
            fresh = [r for r in records if r.offset >= next_offset]
            stats.redelivered = len(records) - len(fresh)
            if not fresh:
                return stats
            decoded = [(r, self._decode(topic, r)) for r in fresh]
            if self.only is not None:
                decoded = [(r, cm) for r, cm in decoded if cm is not None and self.only(cm)]
            batch = _Batch(self.sql, c, [commit for _, commit in decoded if commit is not None])
            for record, commit in decoded:
                if commit is None:
                    batch.reject_record(topic, record)
                    stats.invalid += 1
                else:
                    self._apply_commit(batch, commit, record, stats)
            batch.flush()
            self._insert_tracking(
                c, Tracking(tracking_name(topic, partition, self.suffix), fresh[-1].offset + 1)
            )
        return stats

    def lock_position(self, c: Any, topic: str, partition: int) -> int:
        """In transaction ``c``: the partition's position, locked until commit where needed."""
        return self._lock_position(c, tracking_name(topic, partition, self.suffix))

    def _lock_position(self, c: Any, name: str) -> int:
        return self._max_tracking_id(name, c) or 0  # type: ignore[attr-defined, no-any-return]

    def _decode(self, topic: str, record: LogRecord) -> Commit | None:
        try:
            return decode(record.value)
        except CodecError as exc:
            logger.error(
                "skipping unreadable record %s/%s/%s: %s",
                topic,
                record.partition,
                record.offset,
                exc,
            )
            return None

    def _apply_commit(
        self, batch: _Batch, commit: Commit, record: LogRecord, stats: BatchStats
    ) -> None:
        if commit.commit_id in batch.commit_ids:
            stats.redelivered += 1
            return
        key = commit.causation.idempotency_key
        key_used = key is not None and (commit.tenant, commit.participant_id, key) in batch.keys
        verdict = apply_commit(batch.row(commit), commit, key_used=key_used)
        batch.record(commit, verdict, record)
        if verdict.status == APPLIED:
            stats.applied += 1
        else:
            stats.rejected += 1


class SqliteParticipantStore(ParticipantStore, SQLiteTrackingRecorder):
    """The participant store in SQLite (embedded default)."""


class PostgresParticipantStore(ParticipantStore, PostgresTrackingRecorder):
    """The participant store in PostgreSQL (shared by many processes)."""

    recorder_kwargs = {"tracking_table_name": "tracking"}

    def _lock_position(self, c: Any, name: str) -> int:
        # Under READ COMMITTED two workers that both own a partition for a moment (a rebalance)
        # could both read the old position and apply overlapping records; the row lock makes the
        # second wait and then see the first one's position, so it skips what was applied.
        c.execute(
            "INSERT INTO tracking (application_name, notification_id) VALUES (%s, 0) "
            "ON CONFLICT DO NOTHING",
            (name,),
        )
        c.execute(
            "SELECT notification_id FROM tracking WHERE application_name = %s FOR UPDATE", (name,)
        )
        return int(c.fetchone()["notification_id"])


def participant_store(
    db: Database, *, suffix: str = "", only: Callable[[Commit], bool] | None = None
) -> ParticipantStore:
    """The store class for the database's kind; ``suffix`` names a set of rebuild tables."""
    cls = SqliteParticipantStore if db.kind == "sqlite" else PostgresParticipantStore
    return cls(db, suffix=suffix, only=only)


class _Batch:
    """Everything one batch reads, loaded set-wise up front; everything it writes, at the end."""

    def __init__(self, sql: Callable[[str], str], c: Any, commits: list[Commit]) -> None:
        self.sql, self.c = sql, c
        self.rows: dict[tuple[str, str], ParticipantRow | None] = {}
        self.dirty: set[tuple[str, str]] = set()
        self.keys: set[tuple[str, str, str]] = set()
        self.commit_ids: set[str] = set()
        self.ledger: list[tuple[Any, ...]] = []
        self.outcomes: list[tuple[Any, ...]] = []
        self.new_keys: list[tuple[str, str, str, str]] = []
        self._load(commits)

    def _load(self, commits: list[Commit]) -> None:
        people = sorted({(c.tenant, c.participant_id) for c in commits})
        self.rows = dict.fromkeys(people)
        for found in self._select_in(
            f"SELECT {PARTICIPANT_COLUMNS} FROM {{participants}} WHERE (tenant, participant_id) IN",  # noqa: S608
            people,
        ):
            self.rows[(found[0], found[1])] = row_from_db(found)
        ids = sorted({(c.commit_id,) for c in commits})
        self.commit_ids = {
            f[0]
            for f in self._select_in(
                "SELECT commit_id FROM {commit_outcomes} WHERE (commit_id) IN", ids
            )
        }
        wanted = sorted(
            {
                (c.tenant, c.participant_id, c.causation.idempotency_key)
                for c in commits
                if c.causation.idempotency_key is not None
            }
        )
        self.keys = {
            (f[0], f[1], f[2])
            for f in self._select_in(
                "SELECT tenant, participant_id, idempotency_key FROM {idempotency_keys} "
                "WHERE (tenant, participant_id, idempotency_key) IN",
                wanted,
            )
        }

    def _select_in(self, head: str, keys: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        found: list[tuple[Any, ...]] = []
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            one = "(" + ", ".join("?" * len(chunk[0])) + ")"
            self.c.execute(
                self.sql(f"{head} ({', '.join([one] * len(chunk))})"),
                [v for key in chunk for v in key],
            )
            found.extend(rows(self.c))
        return found

    def row(self, commit: Commit) -> ParticipantRow | None:
        return self.rows.get((commit.tenant, commit.participant_id))

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
                self.keys.add((*ident, key))
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

    def reject_record(self, topic: str, record: LogRecord) -> None:
        self.c.execute(
            self.sql(
                "INSERT INTO {rejected_records} (topic, log_partition, log_offset, error) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
            ),
            (topic, record.partition, record.offset, "not a gamify commit"),
        )

    def flush(self) -> None:
        sql = self.sql
        rows_out = [row_to_db(r) for k in sorted(self.dirty) if (r := self.rows[k]) is not None]
        for statement, params in (
            (UPSERT_PARTICIPANT, rows_out),
            (INSERT_LEDGER, self.ledger),
            (INSERT_OUTCOME, self.outcomes),
            (INSERT_KEY, self.new_keys),
        ):
            if params:
                self.c.executemany(sql(statement), params)


UPSERT_PARTICIPANT = (
    f"INSERT INTO {{participants}} ({PARTICIPANT_COLUMNS}) "  # noqa: S608
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (tenant, participant_id) DO UPDATE SET "
    "version = excluded.version, display_name = excluded.display_name, "
    "avatar_url = excluded.avatar_url, attributes = excluded.attributes, "
    "balance = excluded.balance, total_earned = excluded.total_earned, "
    "total_spent = excluded.total_spent, total_events = excluded.total_events, "
    "rewards_claimed = excluded.rewards_claimed, is_active = excluded.is_active, "
    "created_at = excluded.created_at, last_seen_at = excluded.last_seen_at"
)
INSERT_LEDGER = (
    "INSERT INTO {points_ledger} (tenant, participant_id, version, idx, transaction_id, "
    "kind, amount, balance_after, reason, metadata, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_OUTCOME = (
    "INSERT INTO {commit_outcomes} (commit_id, tenant, participant_id, status, command, "
    "events, log_partition, log_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_KEY = (
    "INSERT INTO {idempotency_keys} (tenant, participant_id, idempotency_key, commit_id) "
    "VALUES (?, ?, ?, ?)"
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


def row_from_db(found: Sequence[Any]) -> ParticipantRow:
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

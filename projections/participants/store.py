"""Apply a batch of log records to the read models and the tracking row, atomically.

Every stream type (participants, definitions, reward stock) folds its commits through its
registered stream projection; the store owns what they share: re-delivery and duplicate
detection, idempotency keys, commit outcomes, the position, and one transaction per batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteTrackingRecorder

import projections.api_keys.stream  # noqa: F401 - registers the API key stream
import projections.definitions.stream  # noqa: F401 - registers the definition stream
import projections.participants.features  # noqa: F401 - registers the engine features
import projections.participants.stream  # noqa: F401 - registers the participant stream
import projections.rewards.stream  # noqa: F401 - registers the reward stock stream
from projections.data_keys import DataKeyStore
from projections.db import Database, rows
from projections.participants.projector import APPLIED, ParticipantRow, Write
from projections.participants.schema import (
    FLUSH_HOOKS,
    MERGES,
    STATEMENTS,
    TABLES,
    Flush,
    bulk_statement,
    table_names,
)
from projections.participants.stream import row_from_db, row_to_db
from projections.poison import (
    UnknownStream,
    check_storable,
    diagnose,
    digest,
    is_poison,
    sanitise,
    storable,
)
from projections.streams import STREAMS, StreamProjection
from schemas.codec import CodecError, decode
from schemas.events import Commit, ParticipantErased
from schemas.log import LogRecord

logger = logging.getLogger(__name__)

PROJECTION = "participants"
CHUNK = 300  # keys per IN (...) list
SCHEMA_LOCK = 0x67616D6966  # advisory lock id of read-model DDL ("gamif")

__all__ = [
    "PROJECTION",
    "BatchStats",
    "ParticipantStore",
    "ParticipantRow",
    "participant_store",
    "row_from_db",
    "row_to_db",
    "tracking_name",
]


@dataclass(frozen=True, slots=True)
class DecodedRecord(LogRecord):
    """A log record with its commit read ahead (``ParticipantStore.prepare``)."""

    commit: Commit | None
    error: BaseException | None


def tracking_name(topic: str, partition: int, suffix: str = "") -> str:
    """The tracking recorder's application name for one partition of one topic."""
    return f"{PROJECTION}{suffix}:{topic}:{partition}"


@dataclass(slots=True)
class BatchStats:
    """Counts of what one batch did; ``quarantined`` by kind (decode, value, store, engine)."""

    applied: int = 0
    rejected: int = 0
    redelivered: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)

    def add(self, other: BatchStats) -> BatchStats:
        self.applied += other.applied
        self.rejected += other.rejected
        self.redelivered += other.redelivered
        for kind, n in other.quarantined.items():
            self.quarantined[kind] = self.quarantined.get(kind, 0) + n
        return self


class ParticipantStore:
    """The read models; rows and the tracking position change in one transaction.

    Mixed into an eventsourcing tracking recorder (SQLite or PostgreSQL), whose tracking row is
    the projector's position: ``notification_id`` holds the partition's next offset.
    """

    recorder_kwargs: dict[str, Any] = {}

    def __init__(
        self,
        db: Database,
        *,
        suffix: str = "",
        only: Callable[[Commit], bool] | None = None,
        keys: DataKeyStore | None = None,
    ) -> None:
        self.db = db
        self.suffix = suffix
        self.only = only  # a repair folds only some participants' commits
        self.keys = keys  # opens sealed personal fields; None reads them as erased
        self.names = table_names(suffix)
        super().__init__(db.datastore, **self.recorder_kwargs)  # type: ignore[call-arg]

    def sql(self, text: str) -> str:
        """``text`` with this store's table names and the driver's placeholders."""
        return self.db.sql(text.format_map(self.names))

    def create_table(self) -> None:
        super().create_table()  # type: ignore[misc]
        with self.db.transaction(commit=True) as c:
            for table in TABLES.values():
                c.execute(table.create.format_map(self.names))
                for index in table.indexes:
                    c.execute(index.format_map(self.names))

    def next_offsets(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        """The next offset to read per partition, for partitions that have a position."""
        with self.db.transaction(commit=False) as c:
            found = {
                p: self._max_tracking_id(tracking_name(topic, p, self.suffix), c)  # type: ignore[attr-defined]
                for p in partitions
            }
        return {p: n for p, n in found.items() if n is not None}

    def apply_batch(self, topic: str, partition: int, records: list[LogRecord]) -> BatchStats:
        """Fold ``records`` (one partition, ascending offsets) into the read models.

        Records below the stored position are re-deliveries and are skipped; the new position is
        written with the rows, so a crash anywhere neither loses nor doubles a commit. A record
        that cannot be applied (projections/poison.py) is quarantined in the transaction that
        moves the position past it, and the others are applied; an infrastructure error raises.
        """
        try:
            return self._apply(topic, partition, records)
        except Exception as exc:
            if not is_poison(exc):
                raise
            logger.warning(
                "batch %s/%s/%s-%s failed (%s); isolating the record that fails",
                topic,
                partition,
                records[0].offset,
                records[-1].offset,
                diagnose(exc).message,
            )
        return self._isolate(topic, partition, records)

    def _isolate(self, topic: str, partition: int, records: list[LogRecord]) -> BatchStats:
        """Apply a failed batch in halves, each in its own transaction, down to the poison."""
        if len(records) == 1:
            return self._apply_or_quarantine(topic, partition, records[0])
        stats = BatchStats()
        middle = len(records) // 2
        for half in (records[:middle], records[middle:]):
            try:
                stats.add(self._apply(topic, partition, half))
            except Exception as exc:
                if not is_poison(exc):
                    raise
                stats.add(self._isolate(topic, partition, half))
        return stats

    def _apply_or_quarantine(self, topic: str, partition: int, record: LogRecord) -> BatchStats:
        failure: Exception | None = None
        for _ in range(2):  # failing twice alone tells a poison record from a one-off failure
            try:
                return self._apply(topic, partition, [record])
            except Exception as exc:
                if not is_poison(exc):
                    raise
                failure = exc
        assert failure is not None
        return self._apply(topic, partition, [record], poison={record.offset: failure})

    def _apply(
        self,
        topic: str,
        partition: int,
        records: list[LogRecord],
        poison: dict[int, BaseException] | None = None,
    ) -> BatchStats:
        """One transaction: apply ``records`` (quarantine those in ``poison``) and the position."""
        stats = BatchStats()
        with self.db.transaction(commit=True, derived=True) as c:
            next_offset = self.lock_position(c, topic, partition)
            fresh = [r for r in records if r.offset >= next_offset]
            stats.redelivered = len(records) - len(fresh)
            if not fresh:
                return stats
            read = [(r, *self._read(r, (poison or {}).get(r.offset))) for r in fresh]
            if self.only is not None:
                read = [(r, cm, e) for r, cm, e in read if cm is not None and self.only(cm)]
            good = [cm for _, cm, e in read if cm is not None and e is None]
            known = [cm.commit_id for _, cm, e in read if cm is not None and e is not None]
            batch = _Batch(self.sql, c, good, [i for i in known if storable(i)], kind=self.db.kind)
            for record, commit, error in read:
                if error is None and commit is not None:
                    batch.apply(commit, record, stats)
                else:
                    batch.quarantine(topic, record, commit, error, stats)  # type: ignore[arg-type]
            batch.flush()
            self._insert_tracking(  # type: ignore[attr-defined]
                c, Tracking(tracking_name(topic, partition, self.suffix), fresh[-1].offset + 1)
            )
        return stats

    def _read(
        self, record: LogRecord, failure: BaseException | None = None
    ) -> tuple[Commit | None, BaseException | None]:
        """The record's commit (None if unreadable) and why it is poison (None if it is not yet)."""
        if isinstance(record, DecodedRecord):  # read ahead by prepare()
            return record.commit, failure or record.error
        try:
            commit = decode(record.value, self.keys)
        except CodecError as exc:
            return None, failure or exc
        if self.keys is not None and any(type(e) is ParticipantErased for e in commit.events):
            # Commits after it (even in this batch, decoded next) must not open with a cached key.
            self.keys.forget(commit.tenant, commit.participant_id)
        try:
            check_storable(record.value)
        except ValueError as exc:
            return commit, failure or exc
        return commit, failure

    def prepare(self, records: list[LogRecord]) -> list[LogRecord]:
        """``records`` decoded and checked ahead of ``apply_batch`` (issue 11 pipeline).

        Pure (reads the bytes, never the store), so any thread may run it at any time: the
        runner decodes batch N+1 while batch N is written. ``apply_batch`` then takes the
        decoded records as they are. A record whose reading raises anything but the poison
        errors ``_read`` catches is returned undecoded, to be read (and classified) in the
        transaction as before.
        """
        ready: list[LogRecord] = []
        for record in records:
            try:
                commit, error = self._read(record)
            except Exception:  # noqa: BLE001 - read again, and classified, in apply_batch
                ready.append(record)
                continue
            ready.append(
                DecodedRecord(record.partition, record.offset, record.value, commit, error)
            )
        return ready

    def retry(self, topic: str, record: LogRecord) -> str:
        """Apply a quarantined ``record`` again, after a fix, at today's state; its verdict.

        Holds the partition's position lock (the live projector waits), drops the commit's
        ``quarantined`` outcome and key, and folds it with the usual version check: ``applied``,
        or ``conflict`` when its stream moved on meanwhile (a later commit was decided without
        it), or ``duplicate``. The position does not move. A poison error raises and changes
        nothing; ``gamify replay`` is the full repair (it applies the record in its place).
        """
        with self.db.transaction(commit=True) as c:
            self.lock_position(c, topic, record.partition)
            commit, error = self._read(record)
            if error is not None:
                raise error
            assert commit is not None
            c.execute(
                self.sql("DELETE FROM {commit_outcomes} WHERE commit_id = ? AND status = ?"),
                (commit.commit_id, "quarantined"),
            )
            c.execute(
                self.sql("DELETE FROM {idempotency_keys} WHERE commit_id = ?"), (commit.commit_id,)
            )
            batch = _Batch(self.sql, c, [commit], kind=self.db.kind)
            verdict = batch.apply(commit, record, BatchStats())
            batch.flush()
            c.execute(
                self.sql(
                    "UPDATE {quarantined_records} SET status = ?, verdict = ? "
                    "WHERE topic = ? AND log_partition = ? AND log_offset = ?"
                ),
                ("retried", verdict, topic, record.partition, record.offset),
            )
        return verdict

    def lock_position(self, c: Any, topic: str, partition: int) -> int:
        """In transaction ``c``: the partition's position, locked until commit where needed."""
        return self._lock_position(c, tracking_name(topic, partition, self.suffix))

    def _lock_position(self, c: Any, name: str) -> int:
        return self._max_tracking_id(name, c) or 0  # type: ignore[attr-defined, no-any-return]


class SqliteParticipantStore(ParticipantStore, SQLiteTrackingRecorder):
    """The store in SQLite (embedded default)."""


class PostgresParticipantStore(ParticipantStore, PostgresTrackingRecorder):
    """The store in PostgreSQL (shared by many processes)."""

    recorder_kwargs = {"tracking_table_name": "tracking"}

    def create_table(self) -> None:
        # CREATE TABLE IF NOT EXISTS is not safe when processes start at once on a fresh schema
        # (they collide in pg_type); an advisory lock held for the duration serializes them.
        with self.db.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
            try:
                super().create_table()
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))

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
    db: Database,
    *,
    suffix: str = "",
    only: Callable[[Commit], bool] | None = None,
    keys: DataKeyStore | None = None,
) -> ParticipantStore:
    """The store class for the database's kind; ``suffix`` names a set of rebuild tables;
    ``keys`` open sealed personal fields (projections.data_keys)."""
    cls = SqliteParticipantStore if db.kind == "sqlite" else PostgresParticipantStore
    return cls(db, suffix=suffix, only=only, keys=keys)


class _Batch:
    """Everything one batch reads, loaded set-wise up front; everything it writes, at the end."""

    def __init__(
        self,
        sql: Callable[[str], str],
        c: Any,
        commits: list[Commit],
        quarantined_ids: Sequence[str] = (),
        *,
        kind: str = "sqlite",
    ) -> None:
        self.sql, self.c, self.kind, self.commits = sql, c, kind, commits
        self.streams: dict[str, StreamProjection] = {}
        self.writes: list[Write] = []
        by_stream: dict[str, list[Commit]] = {}
        for commit in commits:
            by_stream.setdefault(commit.stream, []).append(commit)
        for name, mine in by_stream.items():
            if name in STREAMS:
                self.streams[name] = STREAMS[name]()
                self.streams[name].load(self._select_in, mine)
        ids = sorted({(c.commit_id,) for c in commits} | {(i,) for i in quarantined_ids})
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
        """Rows of ``head`` (``SELECT ... FROM {table} WHERE (col, ...) IN``) for ``keys``.

        The keys are joined as a VALUES list rather than spelled ``(col, ...) IN ((?, ?), ...)``:
        SQLite answers a row-value IN list with a full scan of the table, and PostgreSQL plans it
        as an OR of every tuple (tens of ms per chunk), so both grew slower as the tables grew.
        Joined, each key is one primary-key lookup. Keys are de-duplicated, as IN would. On
        PostgreSQL the keys go as one text array per column (``unnest``): one short statement
        text whatever the number of keys, so it is parsed and planned once, not per chunk.
        """
        select, _, where = head.rpartition(" WHERE ")
        columns = [c.strip() for c in where.removesuffix(" IN").strip(" ()").split(",")]
        names = ", ".join(f"_k{i}" for i in range(len(columns)))
        on = " AND ".join(f"{column} = _w._k{i}" for i, column in enumerate(columns))
        one = "(" + ", ".join("?" * len(columns)) + ")"
        keys = list(dict.fromkeys(keys))
        found: list[tuple[Any, ...]] = []
        if self.kind == "postgres" and keys:  # one statement: a text array per key column
            arrays = ", ".join("%b::text[]" for _ in columns)
            self.c.execute(
                self.sql(f"{select} JOIN unnest({arrays}) AS _w ({names}) ON {on}"),
                [list(column) for column in zip(*keys, strict=True)],
            )
            return rows(self.c)
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            values = ", ".join([one] * len(chunk))
            self.c.execute(
                self.sql(f"WITH _w ({names}) AS (VALUES {values}) {select} JOIN _w ON {on}"),
                [v for k in chunk for v in k],
            )
            found.extend(rows(self.c))
        return found

    def apply(self, commit: Commit, record: LogRecord, stats: BatchStats) -> str:
        """Fold one commit; its verdict (applied, conflict, duplicate, or redelivered)."""
        if commit.commit_id in self.commit_ids:
            stats.redelivered += 1
            return "redelivered"
        stream = self.streams.get(commit.stream)
        if stream is None:
            raise UnknownStream(f"commit {commit.commit_id!r}: unknown stream {commit.stream!r}")
        self.commit_ids.add(commit.commit_id)
        key = commit.causation.idempotency_key
        ident = (commit.tenant, commit.participant_id, key)
        status, writes = stream.apply(commit, key_used=key is not None and ident in self.keys)
        events = None  # the log has them (at the outcome's position); "[]": nothing to read
        if status == APPLIED:
            self.writes.extend(writes)
            events = None if commit.events else "[]"
            if key is not None:
                self.keys.add(ident)  # type: ignore[arg-type]
                self.writes.append(Write("idempotency_insert", (*ident, commit.commit_id)))
                if commit.causation.fingerprint is not None:
                    self.writes.append(
                        Write("fingerprint_insert", (*ident, commit.causation.fingerprint))
                    )
            stats.applied += 1
        else:
            stats.rejected += 1
        self.writes.append(Write("outcome_insert", _outcome(commit, record, status, events)))
        return status

    def quarantine(
        self,
        topic: str,
        record: LogRecord,
        commit: Commit | None,
        error: BaseException,
        stats: BatchStats,
    ) -> None:
        """Set ``record`` aside with its error and digest; its commit's outcome is ``quarantined``.

        The commit's idempotency key then answers "quarantined" to a retry of the same request
        (until an operator retries the record), instead of deciding and appending again.
        """
        if commit is not None and commit.commit_id in self.commit_ids:
            stats.redelivered += 1  # a second copy of a commit already decided
            return
        info = diagnose(error)
        stats.quarantined[info.kind] = stats.quarantined.get(info.kind, 0) + 1
        logger.error(
            "quarantining %s/%s/%s (commit %s, %s %s): %s",
            topic,
            record.partition,
            record.offset,
            sanitise(commit.commit_id) if commit is not None else "unreadable",
            info.kind,
            info.error_type,
            info.message,
        )
        about = (
            (commit.commit_id, commit.stream, commit.tenant, commit.participant_id)
            if commit is not None
            else (None, None, None, None)
        )
        self.writes.append(
            Write(
                "quarantine_insert",
                (
                    topic,
                    record.partition,
                    record.offset,
                    *[None if v is None else sanitise(v) for v in about],
                    None if commit is None else sanitise(commit.causation.command),
                    None if commit is None else sanitise(commit.recorded_at, 40),
                    info.kind,
                    info.error_type,
                    info.message,
                    digest(record.value),
                    len(record.value),
                    "quarantined",
                    None,
                ),
            )
        )
        if commit is None or not all(map(storable, (*about, commit.causation.command))):
            return
        self.commit_ids.add(commit.commit_id)
        self.writes.append(Write("outcome_quarantined", _outcome(commit, record, "quarantined")))
        key = commit.causation.idempotency_key
        ident = (commit.tenant, commit.participant_id, key)
        if key is not None and storable(key) and ident not in self.keys:
            self.keys.add(ident)  # type: ignore[arg-type]
            self.writes.append(Write("idempotency_quarantined", (*ident, commit.commit_id)))

    def flush(self) -> None:
        for stream in self.streams.values():
            self.writes.extend(stream.flush())
        grouped: dict[str, list[tuple[Any, ...]]] = {}
        for write in self.writes:
            grouped.setdefault(write.statement, []).append(write.params)
        flush = Flush(self.c, self.sql, self.kind, self.commits, grouped, [])
        for hook in FLUSH_HOOKS:
            hook(flush)
        for statement, params in grouped.items():
            merge = MERGES.get(statement)
            if params:
                self._write(statement, merge(params) if merge else params)
        for then in flush.after:
            then()

    def _write(self, statement: str, params: list[tuple[Any, ...]]) -> None:
        """Execute one registered statement for every row; on PostgreSQL one statement in all."""
        bulk = bulk_statement(statement) if self.kind == "postgres" and len(params) > 1 else None
        columns = bulk.columns(params) if bulk is not None else None
        if bulk is not None and columns is not None:
            self.c.execute(self.sql(bulk.sql), columns)
        else:
            self.c.executemany(self.sql(STATEMENTS[statement]), params)


def _outcome(
    commit: Commit, record: LogRecord, status: str, events: str | None = None
) -> tuple[Any, ...]:
    return (
        commit.commit_id,
        commit.tenant,
        commit.participant_id,
        status,
        commit.causation.command,
        events,
        record.partition,
        record.offset,
        commit.stream,
    )

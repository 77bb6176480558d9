"""The past: a participant's commits read back from the log by position and folded up to a moment.

The read models keep only the present, but ``commit_outcomes`` keeps every commit's position on
the log (partition, offset) with the projector's verdict, indexed per stream
(``commit_outcomes_stream``). So the state as of a moment is: the positions of the participant's
applied commits, those records read back from the log (``LogReader``), folded with the
projector's own ``apply_commit`` until the first commit recorded after the moment. Definitions
are streams on the same log and are folded the same way (``apply_definition``), so an answer
as of a moment uses the definitions as they stood then.

The moment is the commit's ``recorded_at`` (the server clock when the command was decided, UTC,
to the second): a commit belongs to the past of every moment at or after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any, Protocol

import orjson

import projections.participants.features  # noqa: F401 - registers the engine features' folds
from projections.db import Database, rows
from projections.db import row as first_row
from projections.definitions.projector import DefinitionRow, apply_definition
from projections.participants.projector import APPLIED, ParticipantRow, apply_commit
from projections.participants.schema import TableSql
from projections.participants.snapshots import SNAPSHOT_EVERY
from projections.participants.stream import row_from_db
from schemas.codec import CodecError, decode
from schemas.events import DEFINITION, PARTICIPANT, Commit
from schemas.log import LogRecord
from schemas.sealing import DataKeys

CHUNK = SNAPSHOT_EVERY  # records read from the log at a time (a fold stops at the moment)


class LogReader(Protocol):
    """Reads records of the participant-events log back by position."""

    async def read_at(self, partition: int, offsets: Sequence[int]) -> list[LogRecord]:
        """The records at ``offsets`` (ascending) of ``partition``, in that order; an offset
        that is not on the log any more (retention) is left out."""
        ...


@dataclass(frozen=True, slots=True)
class Position:
    """A commit's place on the log and the projector's verdict on it."""

    commit_id: str
    status: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One commit of a participant's history: its verdict, position and the record (None when
    the record cannot be read or decoded any more)."""

    position: Position
    commit: Commit | None


class PastQueries(TableSql):
    """Positions of a stream's commits from ``commit_outcomes`` (synchronous: call from a thread)."""

    _COLUMNS = "commit_id, status, log_partition, log_offset"

    def __init__(self, db: Database, *, suffix: str = "", keys: DataKeys | None = None) -> None:
        super().__init__(db, suffix=suffix)
        self.keys = keys  # opens sealed personal fields of the commits read (schemas/sealing.py)

    def positions(
        self,
        tenant: str,
        stream: str,
        stream_id: str | None = None,
        *,
        applied: bool = True,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[Position]:
        """Positions of ``stream_id``'s commits (every stream of the kind when None), in log
        order; only applied ones when ``applied``; only past offset ``after`` when given (one
        stream's commits share a partition); the first ``limit`` when given."""
        where = "tenant = ? AND stream = ?"
        params: tuple[Any, ...] = (tenant, stream)
        if stream_id is not None:
            where, params = where + " AND participant_id = ?", (*params, stream_id)
        if after is not None:
            where, params = where + " AND log_offset > ?", (*params, after)
        if applied:
            where, params = where + " AND status = ?", (*params, APPLIED)
        with self.db.transaction(commit=False) as c:
            c.execute(
                self.sql(
                    f"SELECT {self._COLUMNS} FROM {{commit_outcomes}} WHERE {where} "  # noqa: S608
                    "ORDER BY log_partition, log_offset" + ("" if limit is None else " LIMIT ?")
                ),
                params if limit is None else (*params, limit),
            )
            return [Position(*r) for r in rows(c)]

    def snapshot(
        self, tenant: str, participant_id: str, moment: str
    ) -> tuple[ParticipantRow, Position] | None:
        """The participant's latest snapshot recorded at or before ``moment`` and the position
        of the commit it was taken after (projections/participants/snapshots.py)."""
        with self.db.transaction(commit=False) as c:
            c.execute(
                self.sql(
                    "SELECT s.row, o.commit_id, o.status, o.log_partition, o.log_offset "
                    "FROM {participant_snapshots} s "
                    "JOIN {commit_outcomes} o ON o.commit_id = s.commit_id "
                    "WHERE s.tenant = ? AND s.participant_id = ? AND s.recorded_at <= ? "
                    "ORDER BY s.version DESC LIMIT 1"
                ),
                (tenant, participant_id, moment),
            )
            found = first_row(c)
        if found is None:
            return None
        return row_from_db(tuple(orjson.loads(found[0]))), Position(*found[1:])

    def page(
        self, tenant: str, participant_id: str, page: int, page_size: int
    ) -> tuple[list[Position], int]:
        """One page of a participant's commits (every verdict), newest first, and their total."""
        found, total = self.paged(
            self._COLUMNS,
            "commit_outcomes",
            "tenant = ? AND stream = ? AND participant_id = ?",
            (tenant, PARTICIPANT, participant_id),
            "log_offset DESC",
            page,
            page_size,
        )
        return [Position(*r) for r in found], total


async def participant_as_of(
    queries: PastQueries, log: LogReader, tenant: str, participant_id: str, moment: str
) -> ParticipantRow | None:
    """The participant row as the projector had it at ``moment`` (``YYYY-MM-DDTHH:MM:SSZ``);
    None if the participant did not exist yet (or never did).

    Folds from the latest snapshot at or before the moment (none: from the first commit), so
    at most SNAPSHOT_EVERY - 1 commits are read and folded whatever the history's length."""
    start = await asyncio.to_thread(queries.snapshot, tenant, participant_id, moment)
    row, after = (start[0], start[1].offset) if start else (None, None)
    while True:  # a page of positions at a time: the fold usually ends within the first
        positions = await asyncio.to_thread(
            queries.positions, tenant, PARTICIPANT, participant_id, after=after, limit=CHUNK
        )
        if not positions:
            return row
        async for commit in _commits(log, positions, queries.keys):
            if commit.recorded_at > moment:
                return row
            row = apply_commit(row, commit, key_used=False, writes=False).row
        after = positions[-1].offset


async def definitions_as_of(
    queries: PastQueries, log: LogReader, tenant: str, moment: str
) -> list[DefinitionRow]:
    """The tenant's definitions that were active at ``moment``, as the admin API had them, in
    the order ``DefinitionQueries.active`` gives (kind, created_at, code)."""
    positions = await asyncio.to_thread(queries.positions, tenant, DEFINITION)
    found: dict[str, DefinitionRow | None] = {}
    ended: set[str] = set()
    async for commit in _commits(log, positions, queries.keys):
        ident = commit.participant_id
        if ident in ended:
            continue
        if commit.recorded_at > moment:
            ended.add(ident)  # later commits of this stream were decided on this one
            continue
        found[ident] = apply_definition(found.get(ident), commit)[1]
    active = [r for r in found.values() if r is not None and r.is_active]
    return sorted(active, key=lambda r: (r.kind, r.created_at, r.code))  # as DefinitionQueries


async def history(
    queries: PastQueries, log: LogReader, tenant: str, participant_id: str, page: int, size: int
) -> tuple[list[HistoryEntry], int]:
    """One page of the participant's commits, newest first, with their records, and the total."""
    positions, total = await asyncio.to_thread(queries.page, tenant, participant_id, page, size)
    records: dict[tuple[int, int], LogRecord] = {}
    for partition, group in groupby(sorted(positions, key=_where), key=lambda p: p.partition):
        for record in await log.read_at(partition, [p.offset for p in group]):
            records[(record.partition, record.offset)] = record
    return [
        HistoryEntry(p, _decoded(records.get(_where(p)), queries.keys)) for p in positions
    ], total


async def _commits(log: LogReader, positions: list[Position], keys: DataKeys | None) -> Any:
    """The commits at ``positions`` in their order, read in chunks (so a fold can stop early)."""
    for partition, group in groupby(positions, key=lambda p: p.partition):
        for chunk in _chunks([p.offset for p in group]):
            for record in await log.read_at(partition, chunk):
                commit = _decoded(record, keys)
                if commit is not None:
                    yield commit


def _chunks(offsets: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(offsets), CHUNK):
        yield offsets[start : start + CHUNK]


def _where(p: Position) -> tuple[int, int]:
    return (p.partition, p.offset)


def _decoded(record: LogRecord | None, keys: DataKeys | None) -> Commit | None:
    if record is None:
        return None
    try:
        return decode(record.value, keys)
    except CodecError:
        return None  # applied commits always decoded; a quarantined one may not

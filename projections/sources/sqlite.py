"""Read the embedded SQLite participant-events log as a single-partition source."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from projections.sources import StartPositions
from schemas.log import LogRecord

LOG_TABLE = "participant_events"


class SqliteLogSource:
    """Polls the log file; ``wake()`` (called by an in-process appender) cuts the wait short."""

    def __init__(self, path: str, topic: str) -> None:
        self.topic = topic
        self.recorder = SQLiteApplicationRecorder(
            SQLiteDatastore(path, originator_id_type="text", lock_timeout=30),
            events_table_name=LOG_TABLE,
        )
        self.recorder.create_table()
        self.next_offset = 0
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def start(self, start_positions: StartPositions) -> None:
        self.next_offset = (await start_positions([0])).get(0, 0)

    async def read(self, max_records: int, timeout: float) -> dict[int, list[LogRecord]]:
        self._wake.clear()  # before selecting, so an append that races the select still wakes us
        records = await asyncio.to_thread(self._select, max_records)
        if not records:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                return {}
            records = await asyncio.to_thread(self._select, max_records)
        if not records:
            return {}
        self.next_offset = records[-1].offset + 1
        return {0: records}

    def _select(self, limit: int) -> list[LogRecord]:
        found = self.recorder.select_notifications(self.next_offset + 1, limit)
        return [LogRecord(0, n.id - 1, n.state) for n in found]

    async def committed(self, positions: dict[int, int]) -> None:
        return None

    async def end_offsets(self) -> dict[int, int]:
        return {0: await asyncio.to_thread(self.recorder.max_notification_id) or 0}

    async def stop(self) -> None:
        return None

    def close(self) -> None:
        self.recorder.datastore.close()

    def partitions(self) -> Sequence[int]:
        return (0,)


class SqliteLogReader:
    """Reads records of the log file back by offset (``projections.past.LogReader``)."""

    CHUNK = 500  # offsets per SELECT

    def __init__(self, path: str) -> None:
        self.datastore = SQLiteDatastore(path, originator_id_type="text", lock_timeout=30)

    async def read_at(self, partition: int, offsets: Sequence[int]) -> list[LogRecord]:
        return await asyncio.to_thread(self._select, list(offsets)) if partition == 0 else []

    def _select(self, offsets: list[int]) -> list[LogRecord]:
        found: list[LogRecord] = []
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(offsets), self.CHUNK):
                ids = [o + 1 for o in offsets[start : start + self.CHUNK]]
                marks = ", ".join("?" * len(ids))
                c.execute(
                    f"SELECT rowid, state FROM {LOG_TABLE} WHERE rowid IN ({marks}) "  # noqa: S608
                    "ORDER BY rowid",
                    ids,
                )
                found.extend(LogRecord(0, r[0] - 1, bytes(r[1])) for r in c.fetchall())
        return found

    def close(self) -> None:
        self.datastore.close()

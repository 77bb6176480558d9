"""An in-memory log for unit tests: an EventLog and a single-partition LogSource in one object."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from projections.sources import StartPositions
from schemas.codec import encode
from schemas.events import Commit
from schemas.log import LogPosition, LogRecord


class InMemoryEventLog:
    """Keeps encoded commits in a list; offsets are list indexes. Not durable."""

    def __init__(self, topic: str = "gamify.participant-events") -> None:
        self.topic = topic
        self.values: list[bytes] = []
        self.next_offset = 0
        self._appended = asyncio.Event()

    async def append(self, commit: Commit) -> LogPosition:
        return self.append_value(encode(commit))

    def append_value(self, value: bytes) -> LogPosition:
        """Append raw bytes, as another (perhaps broken) producer on the topic would."""
        self.values.append(value)
        self._appended.set()
        return LogPosition(0, len(self.values) - 1)

    async def start(self, start_positions: StartPositions) -> None:
        self.next_offset = (await start_positions([0])).get(0, 0)

    async def read(self, max_records: int, timeout: float) -> dict[int, list[LogRecord]]:
        if self.next_offset >= len(self.values):
            self._appended.clear()
            try:
                await asyncio.wait_for(self._appended.wait(), timeout)
            except TimeoutError:
                return {}
        end = min(len(self.values), self.next_offset + max_records)
        records = [LogRecord(0, o, self.values[o]) for o in range(self.next_offset, end)]
        self.next_offset = end
        return {0: records} if records else {}

    async def read_at(self, partition: int, offsets: Sequence[int]) -> list[LogRecord]:
        """Records by offset (``projections.past.LogReader``)."""
        if partition != 0:
            return []
        return [LogRecord(0, o, self.values[o]) for o in offsets if 0 <= o < len(self.values)]

    async def committed(self, positions: dict[int, int]) -> None:
        return None

    async def end_offsets(self) -> dict[int, int]:
        return {0: len(self.values)}

    async def stop(self) -> None:
        return None

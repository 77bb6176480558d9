"""Where projectors read the participant-events log from: Kafka or the embedded SQLite log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from schemas.log import LogRecord

# Given the partitions just assigned, return the next offset to read for each (absent: from 0).
StartPositions = Callable[[Sequence[int]], Awaitable[dict[int, int]]]


class LogSource(Protocol):
    """A reader of the participant-events topic for one projection."""

    topic: str

    async def start(self, start_positions: StartPositions) -> None:
        """Connect and position every assigned partition at its stored next offset."""
        ...

    async def read(self, max_records: int, timeout: float) -> dict[int, list[LogRecord]]:
        """Up to ``max_records`` records by partition, waiting at most ``timeout`` seconds."""
        ...

    async def committed(self, positions: dict[int, int]) -> None:
        """Told after the store committed; Kafka sources commit offsets for lag metrics only."""
        ...

    async def end_offsets(self) -> dict[int, int]:
        """Next offset to be written, per partition: the replay target and the lag reference."""
        ...

    async def stop(self) -> None:
        """Leave the group and close connections."""
        ...

"""A LogSource over records held in memory: every partition in turn, one fetch each.

Shared by the runner's unit tests and `bench.pipeline_ab` (a projection without a broker).
"""

from __future__ import annotations

import asyncio

from projections.sources import StartPositions
from schemas.log import LogRecord


class MemorySource:
    """Hands out ``todo`` from the store's positions on; ``pause`` seconds per read (a fetch's
    yield to the loop); records the positions it is told were committed, and whether stopped."""

    def __init__(self, todo: dict[int, list[LogRecord]], topic: str, pause: float = 0.0) -> None:
        self.todo = todo
        self.topic = topic
        self.pause = pause
        self.next: dict[int, int] = {}
        self.stopped = False
        self.committed_positions: list[dict[int, int]] = []

    async def start(self, start_positions: StartPositions) -> None:
        self.next = {p: 0 for p in self.todo} | await start_positions(sorted(self.todo))

    async def read(self, max_records: int, timeout: float) -> dict[int, list[LogRecord]]:
        await asyncio.sleep(self.pause)
        batch = {}
        for p, found in self.todo.items():
            chunk = found[self.next[p] : self.next[p] + max_records]
            if chunk:
                batch[p] = chunk
                self.next[p] += len(chunk)
        return batch

    async def committed(self, positions: dict[int, int]) -> None:
        self.committed_positions.append(dict(positions))

    async def end_offsets(self) -> dict[int, int]:
        return {p: len(found) for p, found in self.todo.items()}

    async def stop(self) -> None:
        self.stopped = True

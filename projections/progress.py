"""Read-your-writes: how far the projector got, per partition, and waiting for a position."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

from schemas.log import LogPosition

# Reads the stored position (next offset) of a partition; runs in a worker thread.
PositionReader = Callable[[int], "int | None"]


class Progress:
    """Positions the local projector reports, with a fallback poll of the store.

    In one process the runner calls ``advance`` after each committed batch and wakes exactly
    the waiters whose offset it passed. A waiter still unanswered after ``poll_interval``
    reads the stored position (an API process without a local projector, or a partition
    another process projects); the poll is shared: at most one per partition per interval,
    however many requests wait (under load, one poll per waiter was more work than projecting),
    and none for a partition the local projector advanced within ``LOCAL_FRESH`` seconds (it
    projects that partition; the store cannot know more than it reports).
    """

    LOCAL_FRESH = 1.0

    def __init__(self, read_position: PositionReader, *, poll_interval: float = 0.05) -> None:
        self._read_position = read_position
        self._poll_interval = poll_interval
        self._known: dict[int, int] = {}
        self._polled_at: dict[int, float] = {}
        self._local_at: dict[int, float] = {}
        self._waiters: dict[int, list[tuple[int, int, asyncio.Future[None]]]] = {}
        self._order = itertools.count()

    def advance(self, partition: int, next_offset: int) -> None:
        """The local projector committed ``partition`` up to ``next_offset`` (exclusive)."""
        self._local_at[partition] = asyncio.get_running_loop().time()
        self._advance(partition, next_offset)

    def _advance(self, partition: int, next_offset: int) -> None:
        if next_offset <= self._known.get(partition, 0):
            return
        self._known[partition] = next_offset
        waiters = self._waiters.get(partition)
        while waiters and waiters[0][0] < next_offset:
            waiter = heapq.heappop(waiters)[2]
            if not waiter.done():
                waiter.set_result(None)

    def known(self) -> dict[int, int]:
        return dict(self._known)

    async def wait_for(self, position: LogPosition, timeout: float) -> bool:
        """True once ``position`` is projected; False if ``timeout`` seconds pass first."""
        partition, offset = position.partition, position.offset
        if self._known.get(partition, 0) > offset:
            return True
        loop = asyncio.get_running_loop()
        began = loop.time()
        deadline = began + timeout
        passed: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._waiters.setdefault(partition, []), (offset, next(self._order), passed))
        try:
            while self._known.get(partition, 0) <= offset:
                now = loop.time()
                if now >= deadline:
                    return False
                due = max(
                    self._polled_at.get(partition, began) + self._poll_interval,
                    self._local_at.get(partition, began - self.LOCAL_FRESH) + self.LOCAL_FRESH,
                )
                if now - began >= self._poll_interval and now >= due:
                    self._polled_at[partition] = now  # before the await: other waiters skip
                    stored = await asyncio.to_thread(self._read_position, partition)
                    if stored is not None:
                        self._advance(partition, stored)
                    continue
                wake = min(deadline, max(due, began + self._poll_interval)) - now
                await asyncio.wait((passed,), timeout=max(wake, 0.001))
            return True
        finally:
            if not passed.done():
                passed.cancel()  # popped (and skipped) when the partition passes its offset

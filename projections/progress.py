"""Read-your-writes: how far the projector got, per partition, and waiting for a position."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from schemas.log import LogPosition

# Reads the stored position (next offset) of a partition; runs in a worker thread.
PositionReader = Callable[[int], "int | None"]


class Progress:
    """Positions the local projector reports, with a fallback poll of the store.

    In one process the runner calls ``advance`` after each committed batch and waiters wake at
    once; an API process without a local projector learns positions by polling the store.
    """

    def __init__(self, read_position: PositionReader, *, poll_interval: float = 0.05) -> None:
        self._read_position = read_position
        self._poll_interval = poll_interval
        self._known: dict[int, int] = {}
        self._changed = asyncio.Event()

    def advance(self, partition: int, next_offset: int) -> None:
        if next_offset > self._known.get(partition, 0):
            self._known[partition] = next_offset
            self._changed.set()
            self._changed = asyncio.Event()

    def known(self) -> dict[int, int]:
        return dict(self._known)

    async def wait_for(self, position: LogPosition, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        polled_at = loop.time()
        while self._known.get(position.partition, 0) <= position.offset:
            now = loop.time()
            if now >= deadline:
                return False
            if now - polled_at >= self._poll_interval:
                polled_at = now
                stored = await asyncio.to_thread(self._read_position, position.partition)
                if stored is not None:
                    self.advance(position.partition, stored)
                continue
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), min(self._poll_interval, deadline - now))
            except TimeoutError:
                pass
        return True

"""How far each projection is behind the log, per partition; feeds /readyz and /metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from projections import metrics

logger = logging.getLogger(__name__)

EndOffsets = Callable[[], Awaitable[dict[int, int]]]
Positions = Callable[[Sequence[int]], dict[int, int]]
T = TypeVar("T")


@dataclass(slots=True)
class LagReport:
    """The last measurement: lag per partition, or what prevented it.

    ``log_error`` is set when the log's end offsets could not be read, ``store_error`` when
    the store's positions could not; ``progressed_at`` is when the positions last moved (or
    the lag was zero), so ``measured_at - progressed_at`` is how long a backlog sat still.
    """

    lag: dict[int, int] = field(default_factory=dict)
    log_error: str | None = None
    store_error: str | None = None
    measured_at: float = 0.0
    progressed_at: float = 0.0
    positions: dict[int, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.lag.values())

    @property
    def error(self) -> str | None:
        return self.log_error or self.store_error

    def stalled_for(self) -> float:
        """Seconds the projector has had records to project without moving (0: moving)."""
        if self.total == 0 or self.error:
            return 0.0
        return max(0.0, self.measured_at - self.progressed_at)


class SingleFlight(Generic[T]):
    """At most one blocking call in a worker thread at a time; callers wait a bounded time.

    A store that hangs (a network cut, a pool waiting for connections) must not pile up
    worker threads: while one call is in flight, later callers wait on that same call.
    """

    def __init__(self) -> None:
        self._running: asyncio.Future[T] | None = None

    async def __call__(self, fn: Callable[[], T], timeout: float) -> T:
        """``fn()``'s result; TimeoutError after ``timeout`` seconds (the call goes on)."""
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(asyncio.to_thread(fn))
            self._running.add_done_callback(_retrieve)
        return await asyncio.wait_for(asyncio.shield(self._running), timeout)


def _retrieve(future: asyncio.Future[object]) -> None:
    if not future.cancelled():
        future.exception()  # marks it retrieved: callers that gave up need not see it


class LagMonitor:
    """Measures end offsets against stored positions every ``interval`` seconds.

    Each side is bounded by ``timeout`` seconds, so an unreachable log or store shows up in
    the report within ``interval + timeout`` and is blamed on the right one.
    """

    def __init__(
        self,
        projection: str,
        end_offsets: EndOffsets,
        positions: Positions,
        *,
        interval: float = 0.5,
        timeout: float = 1.0,
    ) -> None:
        self.projection = projection
        self._end_offsets = end_offsets
        self._positions = positions
        self.interval = interval
        self.timeout = timeout
        self.report = LagReport()
        self._store = SingleFlight[dict[int, int]]()

    async def measure(self) -> LagReport:
        now = time.time()
        last = self.report
        try:
            ends = await asyncio.wait_for(self._end_offsets(), self.timeout)
        except Exception as exc:  # reported through /readyz, never raised to the loop
            self.report = _failed(last, now, log_error=_describe(exc))
            return self.report
        try:
            partitions = sorted(ends)
            done = await self._store(lambda: self._positions(partitions), self.timeout)
        except Exception as exc:
            self.report = _failed(last, now, store_error=_describe(exc))
            return self.report
        lag = {p: max(0, end - done.get(p, 0)) for p, end in ends.items()}
        for partition, behind in lag.items():
            metrics.LAG.labels(self.projection, str(partition)).set(behind)
        moved = done != last.positions or not any(lag.values()) or last.progressed_at == 0.0
        self.report = LagReport(
            lag, None, None, now, now if moved else last.progressed_at, dict(done)
        )
        return self.report

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.measure()
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except TimeoutError:
                pass


def _failed(
    last: LagReport, now: float, *, log_error: str | None = None, store_error: str | None = None
) -> LagReport:
    return LagReport(last.lag, log_error, store_error, now, last.progressed_at, last.positions)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError) and not str(exc):
        return "no answer in time"
    return f"{type(exc).__name__}: {exc}"

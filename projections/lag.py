"""How far each projection is behind the log, per partition; feeds /readyz and /metrics."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from projections import metrics

logger = logging.getLogger(__name__)

EndOffsets = Callable[[], Awaitable[dict[int, int]]]
Positions = Callable[[Sequence[int]], dict[int, int]]


@dataclass(slots=True)
class LagReport:
    """The last measurement: lag per partition, or the error that prevented it."""

    lag: dict[int, int] = field(default_factory=dict)
    error: str | None = None
    measured_at: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.lag.values())


class LagMonitor:
    """Measures end offsets against stored positions every ``interval`` seconds."""

    def __init__(
        self,
        projection: str,
        end_offsets: EndOffsets,
        positions: Positions,
        *,
        interval: float = 2.0,
    ) -> None:
        self.projection = projection
        self._end_offsets = end_offsets
        self._positions = positions
        self.interval = interval
        self.report = LagReport()

    async def measure(self) -> LagReport:
        try:
            ends = await self._end_offsets()
            done = await asyncio.to_thread(self._positions, sorted(ends))
        except Exception as exc:  # reported through /readyz, never raised to the loop
            self.report = LagReport(self.report.lag, f"{type(exc).__name__}: {exc}", time.time())
            return self.report
        lag = {p: max(0, end - done.get(p, 0)) for p, end in ends.items()}
        for partition, behind in lag.items():
            metrics.LAG.labels(self.projection, str(partition)).set(behind)
        self.report = LagReport(lag, None, time.time())
        return self.report

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.measure()
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except TimeoutError:
                pass

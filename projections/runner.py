"""The consume loop shared by live projection and replay: read a batch, apply it, advance."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from projections import metrics
from projections.sources import LogSource
from schemas.log import LogRecord

logger = logging.getLogger(__name__)


class BatchStats(Protocol):
    applied: int
    rejected: int
    redelivered: int
    quarantined: dict[str, int]


class BatchStore(Protocol):
    """A read-model store that applies one partition's batch with its position, atomically."""

    def apply_batch(self, topic: str, partition: int, records: list[LogRecord]) -> BatchStats: ...

    def next_offsets(self, topic: str, partitions: Sequence[int]) -> dict[int, int]: ...


@dataclass(slots=True)
class RunStats:
    """Totals over the life of one runner."""

    records: int = 0
    batches: int = 0
    positions: dict[int, int] = field(default_factory=dict)


async def run(
    source: LogSource,
    store: BatchStore,
    stop: asyncio.Event,
    *,
    on_advance: Callable[[int, int], None] | None = None,
    until: dict[int, int] | None = None,
    max_records: int = 1000,
    poll_timeout: float = 0.2,
    projection: str = "participants",
) -> RunStats:
    """Project from ``source`` into ``store`` until ``stop`` is set (or ``until`` is reached).

    The store commits rows and the position together; only then is the position reported, so a
    waiter never sees a position whose rows are not readable yet.
    """
    stats = RunStats()

    async def start_positions(partitions: Sequence[int]) -> dict[int, int]:
        found = await asyncio.to_thread(store.next_offsets, source.topic, list(partitions))
        stats.positions.update(found)
        return found

    await source.start(start_positions)
    try:
        while not stop.is_set() and not _reached(stats.positions, until):
            batch = await source.read(max_records, poll_timeout)
            for partition, records in batch.items():
                if not records:
                    continue
                done = await asyncio.to_thread(store.apply_batch, source.topic, partition, records)
                _count(projection, done)
                next_offset = records[-1].offset + 1
                stats.positions[partition] = next_offset
                stats.records += len(records)
                stats.batches += 1
                if on_advance is not None:
                    on_advance(partition, next_offset)
            if batch:
                await source.committed({p: r[-1].offset + 1 for p, r in batch.items() if r})
    finally:
        await source.stop()
    return stats


def _reached(positions: dict[int, int], until: dict[int, int] | None) -> bool:
    if until is None:
        return False
    return all(positions.get(p, 0) >= end for p, end in until.items() if end > 0)


def _count(projection: str, done: BatchStats) -> None:
    metrics.BATCHES.labels(projection).inc()
    for verdict in ("applied", "rejected", "redelivered"):
        if amount := getattr(done, verdict):
            metrics.COMMITS.labels(projection, verdict).inc(amount)
    for kind, amount in done.quarantined.items():
        metrics.COMMITS.labels(projection, "quarantined").inc(amount)
        metrics.QUARANTINED.labels(projection, kind).inc(amount)

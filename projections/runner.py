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
    catch_up_records: int | None = 5000,
    decode_ahead: bool = False,
    poll_timeout: float = 0.2,
    projection: str = "participants",
) -> RunStats:
    """Project from ``source`` into ``store`` until ``stop`` is set (or ``until`` is reached).

    The store commits rows and the position together; only then is the position reported, so a
    waiter never sees a position whose rows are not readable yet.

    Pipelined (issue 11): while batch N is applied in a worker thread, batch N+1 is fetched and,
    with ``decode_ahead`` and a store that has ``prepare`` (decoding, which reads only the
    bytes), decoded in another thread. Off by default: measured on a loaded 2-core machine the
    second Python thread made projection slower, PostgreSQL most (docs/projection-pipeline.md).
    The fold of N+1 still starts only once N is committed, in log order, in one
    transaction per partition batch with its position: the store's guarantees are unchanged.
    At most one batch is in flight; ``stop`` or ``until`` ends the loop after it is committed.
    An error of the batch in flight ends the loop at the next read (at most ``poll_timeout``).

    Reads ask for ``max_records``; after a read that came back full (a backlog: a restart, a
    burst, a replay) the next asks for up to ``catch_up_records``, so a backlog is applied in
    fewer, bigger transactions (each participant row written once per batch, not once per few
    commits). A read that comes back short returns to ``max_records``: once caught up, batches
    stay small and a waiter's commit is not held behind a big transaction. None: always
    ``max_records``.
    """
    stats = RunStats()
    ahead: dict[int, int] = {}  # next offset per partition as read (applied or in flight)
    inflight: asyncio.Task[None] | None = None
    prepare = getattr(store, "prepare", None) if decode_ahead else None

    async def start_positions(partitions: Sequence[int]) -> dict[int, int]:
        # A (re)assignment seeks to the store's positions: let the batch in flight commit first,
        # so the positions read here include it (else its records would come again, skipped).
        if inflight is not None:
            await asyncio.wait([inflight])
        found = await asyncio.to_thread(store.next_offsets, source.topic, list(partitions))
        stats.positions.update(found)
        for p in partitions:
            ahead[p] = found.get(p, 0)
        return found

    async def apply(batch: dict[int, list[LogRecord]]) -> None:
        for partition, records in batch.items():
            done = await asyncio.to_thread(store.apply_batch, source.topic, partition, records)
            _count(projection, done)
            next_offset = records[-1].offset + 1
            stats.positions[partition] = next_offset
            stats.records += len(records)
            stats.batches += 1
            if on_advance is not None:
                on_advance(partition, next_offset)

    async def settle() -> None:
        """Wait for the batch in flight; raise what it raised; tell the source its positions."""
        nonlocal inflight
        if inflight is None:
            return
        # Shielded: a cancelled runner must not return while a worker thread still writes
        # (the caller may close the database); ``finally`` below waits for it instead.
        await asyncio.shield(inflight)
        inflight = None
        await source.committed({p: n for p, n in stats.positions.items() if p in task_partitions})

    task_partitions: set[int] = set()
    limit = max_records
    await source.start(start_positions)
    try:
        while not stop.is_set() and not _reached(ahead, until):
            batch = {p: r for p, r in (await source.read(limit, poll_timeout)).items() if r}
            full = sum(map(len, batch.values())) >= limit
            limit = max(max_records, catch_up_records or 0) if full else max_records
            if inflight is not None and inflight.done():
                await settle()  # raises what it raised; reports its positions to the source
            if not batch:
                continue
            if prepare is not None and inflight is not None:  # overlap decoding with the write
                batch = await asyncio.to_thread(_prepare, prepare, batch)
            for partition, records in batch.items():
                ahead[partition] = records[-1].offset + 1
            if inflight is not None:
                await settle()
            task_partitions = set(batch)
            inflight = asyncio.create_task(apply(batch))
        await settle()
    finally:
        if inflight is not None:  # an error or cancellation: let the transaction in flight end
            await asyncio.wait([inflight])
            if not inflight.cancelled() and inflight.exception() is not None:
                logger.warning("batch in flight failed too: %r", inflight.exception())
        await source.stop()
    return stats


def _prepare(
    prepare: Callable[[list[LogRecord]], list[LogRecord]], batch: dict[int, list[LogRecord]]
) -> dict[int, list[LogRecord]]:
    return {partition: prepare(records) for partition, records in batch.items()}


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

"""The pipelined runner (issue 11): one batch in flight, folds in order, positions after commit.

A recording store stands in for the read-model store (the real stores are exercised by the
integration tests); it checks the runner's side of the contract: batch N+1 is read and
prepared while N is applied, never applied before N returned, a position is reported only
after its batch was applied, an error of the batch in flight stops the runner, and a cancelled
runner does not return while a worker thread still applies.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from projections import runner
from schemas.log import LogRecord
from tests.memory_source import MemorySource

TOPIC = "t"


def source_of(todo: dict[int, list[LogRecord]]) -> MemorySource:
    return MemorySource(todo, TOPIC, pause=0.001)


@dataclass
class Stats:
    applied: int = 0
    rejected: int = 0
    redelivered: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)


class RecordingStore:
    """Applies slowly in its worker thread and logs what happened, in order."""

    def __init__(self, delay: float = 0.02, fail_at: int | None = None) -> None:
        self.delay, self.fail_at = delay, fail_at
        self.log: list[tuple[str, int, int]] = []  # (what, partition, first offset)
        self.lock = threading.Lock()
        self.applying = 0
        self.overlapped = 0  # prepares that ran while a batch was being applied
        self.positions: dict[int, int] = {}

    def next_offsets(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        return {p: self.positions[p] for p in partitions if p in self.positions}

    def prepare(self, records: list[LogRecord]) -> list[LogRecord]:
        with self.lock:
            self.overlapped += self.applying
            self.log.append(("prepare", records[0].partition, records[0].offset))
        return records

    def apply_batch(self, topic: str, partition: int, records: list[LogRecord]) -> Stats:
        with self.lock:
            assert self.applying == 0, "two batches applied at once"
            self.applying = 1
            self.log.append(("begin", partition, records[0].offset))
        try:
            time.sleep(self.delay)
            if self.fail_at is not None and records[0].offset >= self.fail_at:
                raise OSError("store went away")
            expected = self.positions.get(partition, 0)
            assert records[0].offset == expected, "a batch applied out of order"
            self.positions[partition] = records[-1].offset + 1
        finally:
            with self.lock:
                self.applying = 0
                self.log.append(("end", partition, records[0].offset))
        return Stats(applied=len(records))


def records(partition: int, n: int) -> list[LogRecord]:
    return [LogRecord(partition, i, b"{}") for i in range(n)]


async def test_batches_apply_in_order_and_the_next_is_prepared_meanwhile() -> None:
    source = source_of({0: records(0, 50), 1: records(1, 30)})
    store = RecordingStore()
    seen: list[tuple[int, int]] = []

    def on_advance(partition: int, next_offset: int) -> None:
        # Reported only once the store holds it (rows and position together).
        assert store.positions[partition] >= next_offset
        seen.append((partition, next_offset))

    stats = await runner.run(
        source,
        store,  # type: ignore[arg-type]
        asyncio.Event(),
        on_advance=on_advance,
        until={0: 50, 1: 30},
        max_records=10,
        catch_up_records=None,
        decode_ahead=True,
        poll_timeout=0.01,
    )
    assert store.positions == {0: 50, 1: 30}
    assert stats.records == 80 and stats.positions == {0: 50, 1: 30}
    assert [n for p, n in seen if p == 0] == [10, 20, 30, 40, 50]
    assert store.overlapped > 0  # decoding of N+1 ran while N was being written
    assert source.committed_positions[-1] == {0: 50} or source.committed_positions[-1] == {
        0: 50,
        1: 30,
    }
    assert source.stopped


async def test_decoding_ahead_is_off_by_default() -> None:
    source = source_of({0: records(0, 50)})
    store = RecordingStore(delay=0.0)
    await runner.run(source, store, asyncio.Event(), until={0: 50}, max_records=10)  # type: ignore[arg-type]
    assert not any(what == "prepare" for what, _, _ in store.log)


async def test_an_error_of_the_batch_in_flight_stops_the_runner() -> None:
    source = source_of({0: records(0, 100)})
    store = RecordingStore(fail_at=30)
    with pytest.raises(OSError, match="store went away"):
        await runner.run(
            source,
            store,  # type: ignore[arg-type]
            asyncio.Event(),
            until={0: 100},
            max_records=10,
            catch_up_records=None,
            poll_timeout=0.01,
        )
    assert store.positions == {0: 30}  # nothing after the failed batch was applied
    assert ("begin", 0, 40) not in store.log
    assert source.stopped


async def test_stop_ends_after_the_batch_in_flight_is_applied() -> None:
    source = source_of({0: records(0, 1000)})
    store = RecordingStore(delay=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(
        runner.run(source, store, stop, max_records=10, poll_timeout=0.01)  # type: ignore[arg-type]
    )
    await asyncio.sleep(0.12)
    stop.set()
    stats = await asyncio.wait_for(task, 5)
    assert store.applying == 0
    assert stats.positions[0] == store.positions[0]  # every batch read was applied or not read
    assert store.log[-1][0] == "end"


async def test_a_cancelled_runner_returns_only_after_the_thread_finished() -> None:
    source = source_of({0: records(0, 1000)})
    store = RecordingStore(delay=0.2)
    task = asyncio.create_task(
        runner.run(source, store, asyncio.Event(), max_records=10, poll_timeout=0.01)  # type: ignore[arg-type]
    )
    while not any(what == "begin" for what, _, _ in store.log):
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert store.applying == 0  # the caller may now close the database safely
    assert source.stopped


async def test_a_full_read_asks_for_more_and_a_short_one_returns_to_max_records() -> None:
    source = source_of({0: records(0, 100)})
    asked: list[int] = []
    read = source.read

    async def counting(max_records: int, timeout: float) -> dict[int, list[LogRecord]]:
        asked.append(max_records)
        return await read(max_records, timeout)

    source.read = counting  # type: ignore[method-assign]
    store = RecordingStore(delay=0.0)
    await runner.run(
        source,
        store,  # type: ignore[arg-type]
        asyncio.Event(),
        until={0: 100},
        max_records=10,
        catch_up_records=40,
        poll_timeout=0.01,
    )
    # 10 (full) -> 40 (full) -> 40 (full) -> 40 (10 left: short, done)
    assert asked == [10, 40, 40, 40]
    assert [what for what, _, first in store.log if what == "begin"] == ["begin"] * 4
    assert store.positions == {0: 100}

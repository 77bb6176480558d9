"""Read records of the participant-events topic back by position (partition, offset) from Kafka."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas.log import LogRecord

GAP = 500  # offsets between two wanted records read through rather than seeking again
TIMEOUT = 10.0  # seconds one run of offsets may take before the read fails


class KafkaLogReader:
    """``projections.past.LogReader`` on a Kafka topic: one consumer without a group.

    Wanted offsets are read in runs: a run starts with a seek and reads forward through the
    records in between (other keys of the partition) to its last offset; a gap wider than
    ``GAP`` starts a new run. A participant's records usually sit close together, so its whole
    history costs a few seeks and fetches. Reads are serialized (one consumer, one position).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        client_id: str = "gamify-past",
        connection: Mapping[str, Any] | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.client_id = client_id
        self.connection = dict(connection or {})
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def read_at(self, partition: int, offsets: Sequence[int]) -> list[LogRecord]:
        if not offsets:
            return []
        async with self._lock:
            consumer = await self._started()
            tp = TopicPartition(self.topic, partition)
            if consumer.assignment() != {tp}:
                consumer.assign([tp])
            found: list[LogRecord] = []
            for run in _runs(sorted(offsets)):
                found.extend(await self._run(consumer, tp, run))
            return found

    async def _run(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, run: list[int]
    ) -> list[LogRecord]:
        wanted, last = set(run), run[-1]
        consumer.seek(tp, run[0])
        found: list[LogRecord] = []
        deadline = time.monotonic() + TIMEOUT
        while True:
            fetched = await consumer.getmany(tp, timeout_ms=200, max_records=5_000)
            batch = fetched.get(tp, [])
            found.extend(
                LogRecord(tp.partition, r.offset, r.value or b"")
                for r in batch
                if r.offset in wanted
            )
            if batch and batch[-1].offset >= last:
                return found
            if not batch and await self._at_end(consumer, tp, last):
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {tp} offsets {run[0]}..{last} took over {TIMEOUT}s")

    async def _at_end(self, consumer: AIOKafkaConsumer, tp: TopicPartition, last: int) -> bool:
        """True when nothing up to ``last`` is left to read (retention or compaction)."""
        position = await consumer.position(tp)
        if position > last:
            return True
        end = (await consumer.end_offsets([tp]))[tp]
        return position >= end

    async def _started(self) -> AIOKafkaConsumer:
        if self._consumer is None:  # made on first use: aiokafka needs a running loop
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                client_id=self.client_id,
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=20,
                max_partition_fetch_bytes=8 * 1024 * 1024,
                **self.connection,
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()


def _runs(offsets: list[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for offset in offsets:
        if runs and offset - runs[-1][-1] <= GAP:
            runs[-1].append(offset)
        else:
            runs.append([offset])
    return runs

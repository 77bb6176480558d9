"""Read the participant-events topic from Kafka, positioned by the projection store's offsets."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from projections.sources import StartPositions
from projections.sources.kafka_group import remove_predecessors
from schemas.log import LogRecord

logger = logging.getLogger(__name__)


class _Rebalance(ConsumerRebalanceListener):
    """Hands every new assignment to the source so it can seek to the store's positions."""

    def __init__(self, on_assigned: Callable[[set[TopicPartition]], Awaitable[None]]) -> None:
        self._on_assigned = on_assigned

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._on_assigned(assigned)


class KafkaLogSource:
    """LogSource on a Kafka topic; the projection store, not Kafka, owns the positions.

    With ``group_id`` the source joins a consumer group and, on every assignment, asks
    ``start_positions`` where to resume each assigned partition (absent: from the beginning).
    Offsets are committed to the group only so lag tools can see progress. With
    ``group_id=None`` (replay) it assigns itself every partition of the topic.

    Consumers name the topic in metadata requests, which makes brokers with topic
    auto-creation create it (with the broker's default partition count), so ``start()`` first
    waits, without naming it, until the topic exists.

    Args:
        bootstrap_servers: Kafka bootstrap servers, ``host:port[,host:port...]``.
        topic: The participant-events topic.
        group_id: Consumer group of the projection, or None to read every partition alone.
        client_id: Client id reported to the broker. In a group, make it name this process
            (host and port): a restart removes the crashed member with the same client id
            (see ``kafka_group``).
        session_timeout_ms: Group session timeout; some brokers hold a new group's first join
            for up to half of it.
        group_instance_id: Static group membership (KIP-345): a restarted member with the
            same id takes its partitions back at once instead of after the session timeout.
        topic_wait: Seconds ``start()`` waits for the topic to exist.
        connection: TLS/SASL options given to every aiokafka client this source makes.
        only_partitions: Without a group, read only these partitions (one of several processes
            that split a replay or a benchmark by partition); None: every partition.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        group_id: str | None,
        client_id: str = "gamify-projector",
        session_timeout_ms: int = 10_000,
        group_instance_id: str | None = None,
        topic_wait: float = 30.0,
        fetch_max_wait_ms: int = 20,
        connection: Mapping[str, Any] | None = None,
        only_partitions: Sequence[int] | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.connection = dict(connection or {})
        self.topic = topic
        self.group_id = group_id
        self.client_id = client_id
        self.session_timeout_ms = session_timeout_ms
        self.group_instance_id = group_instance_id
        self.topic_wait = topic_wait
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.only_partitions = None if only_partitions is None else sorted(set(only_partitions))
        self._consumer: AIOKafkaConsumer | None = None
        self._start_positions: StartPositions | None = None
        self._partitions: list[int] = []
        self._failure: BaseException | None = None
        self._joined = False

    async def start(self, start_positions: StartPositions) -> None:
        """Wait for the topic, then subscribe (group) or assign every partition (replay)."""
        if self._consumer is not None:
            raise RuntimeError("KafkaLogSource is already started")
        self._start_positions = start_positions
        self._failure = None
        self._joined = False
        self._partitions = await self._wait_for_topic()
        if self.group_id is not None and self.group_instance_id is None:
            await remove_predecessors(
                self.bootstrap_servers, self.group_id, self.client_id, **self.connection
            )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=max(100, self.session_timeout_ms // 3),
            group_instance_id=self.group_instance_id,
            # Read-your-writes waits on this consumer: some brokers (tansu) hold a fetch for the
            # whole max wait even when data arrives, so keep it short (idle cost: ~50 fetches/s).
            fetch_max_wait_ms=self.fetch_max_wait_ms,
            **self.connection,
        )
        await consumer.start()
        self._consumer = consumer
        try:
            if self.group_id is not None:
                consumer.subscribe([self.topic], listener=_Rebalance(self._on_assigned))
            else:
                mine = self._partitions
                if self.only_partitions is not None:
                    mine = [p for p in mine if p in self.only_partitions]
                tps = [TopicPartition(self.topic, p) for p in mine]
                consumer.assign(tps)
                await self._seek(consumer, tps)
                self._joined = True
        except BaseException:
            await self.stop()
            raise

    async def read(self, max_records: int, timeout: float) -> dict[int, list[LogRecord]]:
        """Up to ``max_records`` records by partition, waiting at most ``timeout`` seconds."""
        consumer = self._require_consumer()
        self._raise_failure()
        fetched = await consumer.getmany(
            timeout_ms=max(0, int(timeout * 1000)), max_records=max_records
        )
        # Positioning runs inside getmany (rebalance); never hand out records read from
        # positions the store did not choose.
        self._raise_failure()
        return {
            tp.partition: [
                LogRecord(tp.partition, r.offset, r.value if r.value is not None else b"")
                for r in records
            ]
            for tp, records in fetched.items()
            if records
        }

    async def committed(self, positions: dict[int, int]) -> None:
        """Commit the store's next offsets to the group, for lag metrics only; never raises."""
        consumer = self._consumer
        if consumer is None or self.group_id is None or not positions:
            return
        try:
            assigned = consumer.assignment()
            offsets = {
                tp: offset
                for tp, offset in ((TopicPartition(self.topic, p), o) for p, o in positions.items())
                if tp in assigned
            }
            if offsets:
                await consumer.commit(offsets)
        except Exception as exc:
            logger.warning("could not commit offsets %s of %s: %r", positions, self.topic, exc)

    async def end_offsets(self) -> dict[int, int]:
        """Next offset to be written, per partition of the topic."""
        consumer = self._require_consumer()
        partitions = consumer.partitions_for_topic(self.topic) or self._partitions
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        found = await consumer.end_offsets(tps)
        return {tp.partition: offset for tp, offset in found.items()}

    async def stop(self) -> None:
        """Leave the group and close connections."""
        consumer, self._consumer = self._consumer, None
        self._joined = False
        if consumer is not None:
            await consumer.stop()

    @property
    def joined(self) -> bool:
        """True once the group gave this source its partitions (maybe none) and it sought them."""
        return self._joined

    def partitions(self) -> Sequence[int]:
        """Partitions of the topic as seen when the source started."""
        return tuple(self._partitions)

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        consumer = self._consumer
        tps = sorted((tp for tp in assigned if tp.topic == self.topic), key=lambda t: t.partition)
        if consumer is None:
            return
        try:
            if tps:
                await self._seek(consumer, tps)
            self._joined = True
        except Exception as exc:
            # aiokafka only logs listener errors; stop these partitions and fail the next read.
            logger.exception("positioning %s partitions %s failed", self.topic, tps)
            consumer.pause(*tps)
            self._failure = exc

    async def _seek(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
        if self._start_positions is None:
            raise RuntimeError("no start_positions callback")
        positions = await self._start_positions([tp.partition for tp in tps])
        for tp in tps:
            # Offset 0 is the beginning; if retention removed it, auto_offset_reset="earliest"
            # moves to the first offset still on the log.
            consumer.seek(tp, positions.get(tp.partition, 0))

    async def _wait_for_topic(self) -> list[int]:
        """The topic's partitions, once it exists; asks without naming it until then."""
        deadline = time.monotonic() + self.topic_wait
        last: object = "topic not listed"
        admin: AIOKafkaAdminClient | None = None
        try:
            while True:
                try:
                    if admin is None:
                        admin = AIOKafkaAdminClient(
                            bootstrap_servers=self.bootstrap_servers,
                            client_id=self.client_id,
                            **self.connection,
                        )
                        await admin.start()
                    if self.topic in await admin.list_topics():
                        partitions = _partitions_of(await admin.describe_topics([self.topic]))
                        if partitions:
                            return partitions
                        last = "topic has no partitions yet"
                except KafkaError as exc:
                    last = exc
                    if admin is not None:
                        await admin.close()
                        admin = None
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"topic {self.topic!r} not available on {self.bootstrap_servers} "
                        f"after {self.topic_wait:g}s: {last}"
                    )
                await asyncio.sleep(0.2)
        finally:
            if admin is not None:
                await admin.close()

    def _require_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("KafkaLogSource is not started")
        return self._consumer

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise RuntimeError(
                f"could not position partitions of {self.topic}: {self._failure!r}"
            ) from self._failure


def _partitions_of(described: list[dict[str, Any]]) -> list[int]:
    for topic in described:
        parts = topic.get("partitions")
        if topic.get("error_code") == 0 and isinstance(parts, list):
            return sorted(int(p["partition"]) for p in parts)
    return []


class KafkaEndOffsets:
    """End offsets of a topic's partitions, from a consumer that never joins a group or reads."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        client_id: str = "gamify-lag",
        connection: Mapping[str, Any] | None = None,
    ) -> None:
        self.topic = topic
        self.bootstrap_servers = bootstrap_servers
        self.connection = dict(connection or {})
        self.client_id = client_id
        self._consumer: AIOKafkaConsumer | None = None

    async def __call__(self) -> dict[int, int]:
        if self._consumer is None:  # made on first use: aiokafka needs a running loop
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap_servers,
                client_id=self.client_id,
                enable_auto_commit=False,
                **self.connection,
            )
            await consumer.start()
            self._consumer = consumer
        consumer = self._consumer
        # topics() refreshes metadata for all topics without naming ours (no auto-creation).
        if self.topic not in await consumer.topics():
            return {}
        partitions = consumer.partitions_for_topic(self.topic) or set()
        found = await consumer.end_offsets([TopicPartition(self.topic, p) for p in partitions])
        return {tp.partition: offset for tp, offset in found.items()}

    async def stop(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

"""Read the participant-events topic from Kafka, positioned by the projection store's offsets."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from projections.sources import StartPositions
from projections.sources.kafka_group import remove_predecessors
from projections.sources.own_appends import OwnAppends
from schemas.log import LogRecord

logger = logging.getLogger(__name__)

COMMIT_FLUSH_TIMEOUT = 5.0  # seconds stop() waits for the last offset commit
COMMIT_INTERVAL = 0.5  # seconds between offset commits (lag metrics only)


class _Rebalance(ConsumerRebalanceListener):
    """Hands every new assignment to the source so it can seek to the store's positions."""

    def __init__(
        self,
        on_assigned: Callable[[set[TopicPartition]], Awaitable[None]],
        on_revoked: Callable[[set[TopicPartition]], None],
    ) -> None:
        self._on_assigned = on_assigned
        self._on_revoked = on_revoked

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._on_revoked(revoked)

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
        fetch_max_wait_ms: The consumer's fetch.max.wait.ms.
        own_appends: Hand this process's acknowledged appends (``offer``) to the reader
            without waiting for the fetch (see ``own_appends``); off, ``offer`` does nothing.
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
        own_appends: bool = False,
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
        self._to_commit: dict[int, int] = {}
        self._in_flight: dict[int, int] = {}
        self._committing: asyncio.Task[None] | None = None
        self.own = OwnAppends()
        self.own.enabled = own_appends

    def offer(self, partition: int, offset: int, value: bytes) -> None:
        """An append of this process was acknowledged at ``partition``/``offset``."""
        if self._consumer is not None:
            self.own.offer(partition, offset, value)

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
                listener = _Rebalance(self._on_assigned, self._on_revoked)
                consumer.subscribe([self.topic], listener=listener)
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
        if not self.own.enabled:
            fetched = await consumer.getmany(
                timeout_ms=max(0, int(timeout * 1000)), max_records=max_records
            )
        else:
            fetched = await self._fetch_or_own(consumer, max_records, timeout)
        # Positioning runs inside getmany (rebalance); never hand out records read from
        # positions the store did not choose.
        self._raise_failure()
        return self.own.merge(
            {
                tp.partition: [
                    LogRecord(tp.partition, r.offset, r.value if r.value is not None else b"")
                    for r in records
                ]
                for tp, records in fetched.items()
                if records
            },
            max_records,
        )

    async def _fetch_or_own(
        self, consumer: AIOKafkaConsumer, max_records: int, timeout: float
    ) -> dict[TopicPartition, list[Any]]:
        """Fetched records, waiting up to ``timeout`` unless an own append is ready first."""
        self.own.offered.clear()
        fetched = await consumer.getmany(timeout_ms=0, max_records=max_records)
        if fetched or self.own.has_ready() or timeout <= 0:
            return fetched
        fetch = asyncio.ensure_future(
            consumer.getmany(timeout_ms=int(timeout * 1000), max_records=max_records)
        )
        offered = asyncio.ensure_future(self.own.offered.wait())
        try:
            await asyncio.wait((fetch, offered), return_when=asyncio.FIRST_COMPLETED)
        finally:
            offered.cancel()
            if not fetch.done():
                fetch.cancel()  # records stay in the fetcher's buffer for the next read
        if not fetch.done():
            await asyncio.wait((fetch,))  # an outer cancellation still raises here
        return {} if fetch.cancelled() else fetch.result()

    async def committed(self, positions: dict[int, int]) -> None:
        """Commit the store's next offsets to the group, for lag metrics only; never raises.

        Returns at once: the commit (a broker round trip) runs in the background, with the
        latest positions, at most one per ``COMMIT_INTERVAL`` (a commit per batch competed with
        the appends for the broker); the projector never waits for it. ``stop()`` commits
        the last positions.
        """
        consumer = self._consumer
        if consumer is None or self.group_id is None or not positions:
            return
        self._to_commit.update(positions)
        if self._committing is None or self._committing.done():
            self._committing = asyncio.ensure_future(self._commit_pending(consumer))

    async def _commit_pending(self, consumer: AIOKafkaConsumer) -> None:
        while self._to_commit:
            positions, self._to_commit = self._to_commit, {}
            self._in_flight = positions
            await self._commit(consumer, positions)
            self._in_flight = {}
            await asyncio.sleep(COMMIT_INTERVAL)

    async def _commit(self, consumer: AIOKafkaConsumer, positions: dict[int, int]) -> None:
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
        self.own.revoked(list(self.own.next))
        committing, self._committing = self._committing, None
        if committing is not None and not committing.done():
            committing.cancel()
            await asyncio.wait((committing,))
        last, self._to_commit, self._in_flight = {**self._in_flight, **self._to_commit}, {}, {}
        if consumer is not None and last:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._commit(consumer, last), COMMIT_FLUSH_TIMEOUT)
        if consumer is not None:
            await consumer.stop()

    @property
    def joined(self) -> bool:
        """True once the group gave this source its partitions (maybe none) and it sought them."""
        return self._joined

    def partitions(self) -> Sequence[int]:
        """Partitions of the topic as seen when the source started."""
        return tuple(self._partitions)

    def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        self.own.revoked(tp.partition for tp in revoked if tp.topic == self.topic)

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
        self.own.assigned({tp.partition: positions.get(tp.partition, 0) for tp in tps})

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

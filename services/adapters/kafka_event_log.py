"""The participant-events log on Kafka: one record per commit, keyed by participant."""

from __future__ import annotations

import asyncio
import functools
import logging
import struct
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import UnknownError
from aiokafka.partitioner import DefaultPartitioner

from schemas import codec
from schemas.events import Commit
from schemas.log import LogPosition
from services.adapters.kafka_topics import TopicPolicy, ensure_topics

logger = logging.getLogger(__name__)

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_WORD = struct.Struct("<I")


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (Java ``Utils.murmur2``) as an unsigned 32-bit integer.

    Returns exactly what ``aiokafka.partitioner.murmur2`` returns, with fewer operations per
    4-byte word (words are unpacked with ``struct``, redundant masks are dropped).
    """
    length = len(data)
    h = _SEED ^ length
    whole = length & ~3
    for (k,) in _WORD.iter_unpack(memoryview(data)[:whole]):
        k = (k * _M) & _MASK
        k ^= k >> 24
        h = ((h * _M) & _MASK) ^ ((k * _M) & _MASK)
    extra = length & 3
    if extra >= 3:
        h ^= data[whole + 2] << 16
    if extra >= 2:
        h ^= data[whole + 1] << 8
    if extra >= 1:
        h = ((h ^ data[whole]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


@lru_cache(maxsize=65536)
def _positive_murmur2(key: bytes) -> int:
    return murmur2(key) & 0x7FFFFFFF


def java_partition(key: bytes, num_partitions: int) -> int:
    """The partition the Java client's default partitioner picks for a non-null key."""
    return _positive_murmur2(bytes(key)) % num_partitions


class IdempotenceUnsupported(RuntimeError):
    """The broker refused InitProducerId (e.g. tansu): the fix is GAMIFY_KAFKA_IDEMPOTENCE=false."""


class Murmur2Partitioner:
    """aiokafka partitioner giving the Java client's choice for keyed records, with a cache.

    Participant keys repeat, so the (pure-Python) hash is memoised per key. Records without a
    key are left to aiokafka's default partitioner.
    """

    def __init__(self) -> None:
        self._fallback = DefaultPartitioner()

    def __call__(
        self, key: bytes | None, all_partitions: Sequence[int], available: Sequence[int]
    ) -> int:
        if key is None:
            return self._fallback(key, all_partitions, available)
        ordered = sorted(all_partitions)
        return ordered[java_partition(key, len(ordered))]


class KafkaEventLog:
    """EventLog on a Kafka topic: each commit is one record keyed by tenant and participant.

    One participant's commits share a key and therefore a partition, so they stay in order.
    Partitions are chosen like the Java client (murmur2 of the key), so other producers that key
    the same way agree. Appends wait for ``acks="all"``.

    Args:
        bootstrap_servers: Kafka bootstrap servers, ``host:port[,host:port...]``.
        topic: The participant-events topic.
        partitions: Partition count used when the topic has to be created.
        policy: Replication and retention of the topic (created or checked; see kafka_topics).
        idempotence: Enable the idempotent producer (needs broker support for InitProducerId).
        client_id: Client id reported to the broker.
        connection: TLS/SASL client options (services.adapters.kafka_clients.client_options).
        on_appended: Called with (partition, offset, value bytes) once an append is
            acknowledged; ``serve`` hands it to its own projector (projections.sources.own_appends).
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        *,
        partitions: int = 6,
        policy: TopicPolicy | None = None,
        idempotence: bool = True,
        client_id: str = "gamify-api",
        connection: Mapping[str, Any] | None = None,
        on_appended: Callable[[int, int, bytes], None] | None = None,
    ) -> None:
        if partitions < 1:
            raise ValueError("partitions must be at least 1")
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.partitions = partitions
        self.policy = policy or TopicPolicy()
        self.connection = dict(connection or {})
        self.idempotence = idempotence
        self.client_id = client_id
        self.on_appended = on_appended
        self._producer: AIOKafkaProducer | None = None

    async def start(self) -> None:
        """Create the topic if it is missing, then start the producer."""
        if self._producer is not None:
            return
        await self.ensure_topic()
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            client_id=self.client_id,
            acks="all",
            enable_idempotence=self.idempotence,
            partitioner=Murmur2Partitioner(),
            **self.connection,
        )
        try:
            await producer.start()
        except BaseException as exc:
            await producer.stop()  # any failure (broker down, auth, cancel) leaves no open client
            if not isinstance(exc, UnknownError) or not self.idempotence:
                raise
            raise IdempotenceUnsupported(
                f"the broker at {self.bootstrap_servers} does not support the idempotent "
                "producer (InitProducerId failed); set GAMIFY_KAFKA_IDEMPOTENCE=false"
            ) from exc
        self._producer = producer

    async def stop(self) -> None:
        """Flush pending records and close the producer."""
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def append(self, commit: Commit) -> LogPosition:
        """Durably append one commit (one record) and return where it landed."""
        if self._producer is None:
            raise RuntimeError("KafkaEventLog.append() called before start()")
        value = codec.encode(commit)
        metadata = await self._producer.send_and_wait(
            self.topic, value, key=commit.key, headers=codec.headers(commit)
        )
        if self.on_appended is not None:
            self.on_appended(metadata.partition, metadata.offset, value)
        return LogPosition(metadata.partition, metadata.offset)

    async def append_many(self, commits: Sequence[Commit]) -> list[LogPosition]:
        """Append ``commits`` in order without waiting for each; return where each landed.

        Every record is handed to the producer before any acknowledgement is awaited, so they
        travel in few requests; one key's records keep their order (one partition, and the
        producer sends one batch per partition at a time). The call returns once every record
        is acknowledged (``acks="all"``) or raises the first failure after all have settled:
        some of the others may have landed, so callers retry with the same idempotency keys.
        """
        if self._producer is None:
            raise RuntimeError("KafkaEventLog.append_many() called before start()")
        sent = []
        for commit in commits:
            value = codec.encode(commit)
            future = await self._producer.send(
                self.topic, value, key=commit.key, headers=codec.headers(commit)
            )
            if self.on_appended is not None:  # each one once acknowledged, as append() does
                future.add_done_callback(functools.partial(self._acknowledged, value))
            sent.append(future)
        settled = await asyncio.gather(*sent, return_exceptions=True)
        for result in settled:
            if isinstance(result, BaseException):
                raise result
        return [LogPosition(md.partition, md.offset) for md in settled]  # type: ignore[union-attr]

    def _acknowledged(self, value: bytes, future: asyncio.Future[Any]) -> None:
        if self.on_appended is not None and not future.cancelled() and not future.exception():
            md = future.result()
            self.on_appended(md.partition, md.offset, value)

    async def ensure_topic(self) -> None:
        """Create the topic unless it exists; refuse (TopicConfigError) one that loses events."""
        await ensure_topics(
            self.bootstrap_servers,
            {self.topic: self.partitions},
            history={self.topic},
            policy=self.policy,
            client_id=self.client_id,
            connection=self.connection,
        )

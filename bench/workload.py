"""The participant-events workload: commits built with schemas.events, encoded once, produced fast.

Participant ``i`` gets ``events // participants`` commits, in rounds: round 0 registers it and
awards points (one commit, two events, as an auto-creating award), later rounds award points,
every fifth round deducts. Every commit carries an idempotency key, as an order id would. Keys,
partitions (Kafka's murmur2, services.adapters.kafka_event_log) and headers are the product's.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import pickle
import secrets
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.env import RESULTS, TENANT
from schemas import codec
from schemas.events import (
    Causation,
    Commit,
    Event,
    ParticipantRegistered,
    PointsAwarded,
    PointsDeducted,
)
from services.adapters.kafka_event_log import java_partition
from services.adapters.kafka_topics import ensure_topics

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


@dataclass(slots=True)
class Workload:
    """What a topic holds once produced: records per partition (offsets start at 0)."""

    topic: str
    participants: int
    events: int
    ends: dict[int, int] = field(default_factory=dict)
    balances: int = 0  # sum of every participant's final balance
    bytes: int = 0
    build_seconds: float = 0.0
    produce_seconds: float = 0.0
    from_cache: bool = False


def pid_of(i: int) -> str:
    return f"user_{i:07d}"


def build(participants: int, rounds: int, partitions: int) -> tuple[dict[int, list[Record]], int]:
    """Encoded records by partition, in log order per participant; and the sum of balances."""
    salt = secrets.token_hex(9)
    salt = f"{salt[:8]}-{salt[8:12]}-{salt[12:16]}"  # commit ids shaped like uuid4 strings
    by_partition: dict[int, list[Record]] = {p: [] for p in range(partitions)}
    headers_of: dict[tuple[str, ...], list[tuple[str, bytes]]] = {}
    where = [
        java_partition(f"{TENANT}:{pid_of(i)}".encode(), partitions) for i in range(participants)
    ]
    total = 0
    gc.disable()  # a million young objects: the collector would dominate the build
    try:
        for r in range(rounds):
            at = f"2026-02-14T{10 + r // 60:02d}:{r % 60:02d}:00Z"
            deduct = r % 5 == 4
            for i in range(participants):
                cid = f"{salt}-{r:04x}-{i:012x}"
                balance = 10 * (r + 1) - 15 * ((r + 1) // 5)
                events: tuple[Event, ...]
                if deduct:
                    events = (
                        PointsDeducted(
                            transaction_id=f"tx-{cid}",
                            amount=5,
                            balance_after=balance,
                            reason="redeem",
                            metadata={},
                        ),
                    )
                else:
                    events = (
                        PointsAwarded(
                            transaction_id=f"tx-{cid}",
                            amount=10,
                            balance_after=balance,
                            reason="order",
                            metadata={"sku": "A1"},
                        ),
                    )
                if r == 0:
                    events = (ParticipantRegistered(auto_created=True), *events)
                commit = Commit(
                    commit_id=cid,
                    tenant=TENANT,
                    participant_id=pid_of(i),
                    expected_version=r,
                    recorded_at=at,
                    causation=Causation(
                        command="points.deduct" if deduct else "points.award",
                        source="http",
                        request_id=f"req-{r}-{i}",
                        idempotency_key=f"order-{i}-{r}",
                    ),
                    events=events,
                )
                types = tuple(e.TYPE for e in events)
                headers = headers_of.get(types)
                if headers is None:
                    headers = headers_of[types] = codec.headers(commit)
                by_partition[where[i]].append((commit.key, codec.encode(commit), headers))
        total = participants * (10 * rounds - 15 * (rounds // 5))
    finally:
        gc.enable()
    return by_partition, total


async def produce(
    bootstrap: str, topic: str, by_partition: dict[int, list[Record]], partitions: int
) -> dict[int, int]:
    """Produce every record in big batches, in order per partition; next offset per partition."""
    await ensure_topics(bootstrap, {topic: partitions}, client_id="bench-admin")
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="bench-producer",
        acks="all",
        enable_idempotence=False,
        max_batch_size=1 << 20,
        max_request_size=8 << 20,
        linger_ms=0,
    )
    await producer.start()
    ends: dict[int, int] = {}
    try:
        pending: list[asyncio.Future[object]] = []
        for partition, records in by_partition.items():
            i = 0
            while i < len(records):
                batch = producer.create_batch()
                start = i
                while i < len(records):
                    key, value, headers = records[i]
                    if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                        break
                    i += 1
                if i == start:
                    raise RuntimeError("a record does not fit in an empty batch")
                batch.close()
                pending.append(await producer.send_batch(batch, topic, partition=partition))
                if len(pending) >= 32:
                    await asyncio.gather(*pending)
                    pending.clear()
            ends[partition] = len(records)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return ends


CACHE = RESULTS / ".cache"
SOURCES = ("schemas/events.py", "schemas/codec.py", "bench/workload.py")


def cached_build(
    participants: int, rounds: int, partitions: int, *, cache: bool
) -> tuple[dict[int, list[Record]], int, bool]:
    """``build``, or its bytes from an earlier run with the same sizes and the same codec.

    The cache file is named by the sizes and a digest of the event classes, the codec and this
    module, so any change to what a commit encodes to builds afresh.
    """
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for name in SOURCES:
        digest.update((root / name).read_bytes())
    path = CACHE / f"workload-{participants}x{rounds}x{partitions}-{digest.hexdigest()[:16]}.pickle"
    if cache and path.exists():
        gc.disable()
        try:
            with path.open("rb") as f:
                by_partition, total = pickle.load(f)  # noqa: S301 - our own file
        finally:
            gc.enable()
        return by_partition, total, True
    by_partition, total = build(participants, rounds, partitions)
    if cache:
        CACHE.mkdir(parents=True, exist_ok=True)
        for old in CACHE.glob(f"workload-{participants}x{rounds}x{partitions}-*.pickle"):
            old.unlink(missing_ok=True)  # one per size: they are hundreds of MB
        partial = path.with_suffix(".partial")
        with partial.open("wb") as f:
            pickle.dump((by_partition, total), f, protocol=pickle.HIGHEST_PROTOCOL)
        partial.rename(path)
    return by_partition, total, False


async def make_workload(
    bootstrap: str, topic: str, participants: int, events: int, partitions: int,
    *, cache: bool = True,
) -> Workload:  # fmt: skip
    rounds = max(1, events // participants)
    started = time.perf_counter()
    by_partition, total, hit = cached_build(participants, rounds, partitions, cache=cache)
    built = time.perf_counter()
    size = sum(len(v) for records in by_partition.values() for _, v, _ in records)
    ends = await produce(bootstrap, topic, by_partition, partitions)
    done = time.perf_counter()
    return Workload(
        topic=topic,
        participants=participants,
        events=sum(ends.values()),
        ends=ends,
        balances=total,
        bytes=size,
        build_seconds=built - started,
        produce_seconds=done - built,
        from_cache=hit,
    )


async def raw_consume(bootstrap: str, topic: str, ends: dict[int, int], cap: float) -> dict:
    """Read the topic from the start to ``ends`` with aiokafka and nothing else: the baseline.

    Same consumer settings and batch size as the projector's source (KafkaLogSource, runner's
    ``max_records=1000``); each value is touched, nothing is decoded.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="bench-raw",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    started = time.perf_counter()
    await consumer.start()
    count = size = 0
    try:
        tps = [TopicPartition(topic, p) for p in sorted(ends)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        positions = {p: 0 for p in ends}
        deadline = started + cap
        while any(positions[p] < end for p, end in ends.items()):
            if time.perf_counter() > deadline:
                break
            fetched = await consumer.getmany(timeout_ms=200, max_records=1000)
            for tp, records in fetched.items():
                count += len(records)
                for record in records:
                    size += len(record.value or b"")
                positions[tp.partition] = records[-1].offset + 1
    finally:
        seconds = time.perf_counter() - started
        await consumer.stop()
    return {
        "records": count,
        "seconds": seconds,
        "rate": count / seconds if seconds else 0.0,
        "complete": count >= sum(ends.values()),
    }


def baseline(runs: list[dict]) -> float:
    """The raw consume rate the figures are compared with: the median of the runs."""
    return statistics.median(r["rate"] for r in runs)

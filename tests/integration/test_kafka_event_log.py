"""KafkaEventLog and KafkaLogSource against a real Kafka-protocol broker."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from projections.sources.kafka import KafkaLogSource
from schemas import codec
from schemas.events import (
    Causation,
    Commit,
    ParticipantRegistered,
    PointsAwarded,
    PointsDeducted,
    participant_key,
)
from schemas.log import LogPosition, LogRecord
from services.adapters.kafka_event_log import (
    KafkaEventLog,
    Murmur2Partitioner,
    java_partition,
    murmur2,
)
from tests.kafka_broker import Broker


def make_commit(participant_id: str, n: int, *, tenant: str = "t1") -> Commit:
    events = (
        (ParticipantRegistered(display_name=f"P {participant_id}", attributes={"n": n}),)
        if n == 0
        else (
            PointsAwarded(transaction_id=f"x{n}", amount=5, balance_after=5 * n, reason="é✓"),
            PointsDeducted(transaction_id=f"y{n}", amount=1, balance_after=5 * n - 1),
        )
    )
    return Commit(
        commit_id=str(uuid.uuid4()),
        tenant=tenant,
        participant_id=participant_id,
        expected_version=n,
        recorded_at="2026-01-01T00:00:00.000000Z",
        causation=Causation("points.award", request_id=f"r{n}", idempotency_key=f"k{n}"),
        events=events,
    )


def java_choice(key: bytes, partitions: int) -> int:
    return (aiokafka_murmur2(key) & 0x7FFFFFFF) % partitions


def session_ms(broker: Broker) -> int:
    # tansu holds a new group's first JoinGroup for half the session timeout; Kafka's minimum
    # session timeout is 6 s.
    return 2000 if broker.kind == "tansu" else 6000


async def started_log(broker: Broker, topic: str, partitions: int) -> KafkaEventLog:
    log = KafkaEventLog(
        broker.bootstrap, topic, partitions=partitions, idempotence=broker.idempotence_supported
    )
    await log.start()
    return log


async def read_all(
    source: KafkaLogSource, expected: int, timeout: float = 15.0
) -> dict[int, list[LogRecord]]:
    found: dict[int, list[LogRecord]] = defaultdict(list)
    deadline = time.monotonic() + timeout
    while sum(map(len, found.values())) < expected:
        assert time.monotonic() < deadline, f"read {dict(found)} of {expected} records"
        for partition, records in (await source.read(500, 0.2)).items():
            found[partition].extend(records)
    # Nothing more can arrive: every partition read is read up to the end of the log.
    ends = await source.end_offsets()
    assert {p: rs[-1].offset + 1 for p, rs in found.items()} == {p: ends[p] for p in found}, (
        dict(found),
        ends,
    )
    assert sum(map(len, found.values())) == expected, dict(found)
    return dict(found)


def starting_at(positions: dict[int, int], calls: list[list[int]]):
    async def start_positions(partitions: Sequence[int]) -> dict[int, int]:
        calls.append(list(partitions))
        return {p: positions[p] for p in partitions if p in positions}

    return start_positions


@pytest.fixture
async def event_log(kafka_broker: Broker, kafka_topic: str) -> AsyncIterator[KafkaEventLog]:
    log = await started_log(kafka_broker, kafka_topic, 6)
    yield log
    await log.stop()


async def test_append_orders_per_key_and_reads_back_equal_commits(
    kafka_broker: Broker, kafka_topic: str, event_log: KafkaEventLog
) -> None:
    participants = [f"p{i}" for i in range(8)]
    appended: list[tuple[Commit, LogPosition]] = []
    for n in range(4):
        for pid in participants:
            commit = make_commit(pid, n)
            appended.append((commit, await event_log.append(commit)))

    by_key: dict[bytes, set[int]] = defaultdict(set)
    offsets: dict[int, list[int]] = defaultdict(list)
    for commit, position in appended:
        by_key[commit.key].add(position.partition)
        offsets[position.partition].append(position.offset)
    assert all(len(parts) == 1 for parts in by_key.values()), by_key
    for key, (partition,) in by_key.items():
        assert partition == java_choice(key, 6)
    assert len(offsets) > 1, "8 keys on 6 partitions should use more than one"
    for partition, seen in offsets.items():  # fresh topic: 0, 1, 2, ... in append order
        assert seen == list(range(len(seen))), (partition, seen)

    source = KafkaLogSource(kafka_broker.bootstrap, kafka_topic, group_id=None)
    calls: list[list[int]] = []
    await source.start(starting_at({}, calls))
    try:
        assert calls == [[0, 1, 2, 3, 4, 5]]
        assert list(source.partitions()) == [0, 1, 2, 3, 4, 5]
        read = await read_all(source, len(appended))
        assert await source.end_offsets() == {p: len(offsets.get(p, [])) for p in range(6)}
        await source.committed({0: 1})  # no group: a no-op, never an error
    finally:
        await source.stop()

    records = {(r.partition, r.offset): r for rs in read.values() for r in rs}
    assert len(records) == len(appended)
    for commit, position in appended:
        record = records[(position.partition, position.offset)]
        assert codec.decode(record.value) == commit

    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_broker.bootstrap)
    await consumer.start()
    try:
        tps = [TopicPartition(kafka_topic, p) for p in offsets]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, 0)
        raw: dict[tuple[int, int], tuple[bytes | None, dict[str, bytes]]] = {}
        deadline = time.monotonic() + 10
        while len(raw) < len(appended) and time.monotonic() < deadline:
            for tp, msgs in (await consumer.getmany(timeout_ms=200)).items():
                for m in msgs:
                    raw[(tp.partition, m.offset)] = (m.key, dict(m.headers))
    finally:
        await consumer.stop()
    for commit, position in appended:
        key, got = raw[(position.partition, position.offset)]
        assert key == commit.key
        assert got[codec.HEADER_EVENT_TYPES] == ",".join(e.TYPE for e in commit.events).encode()
        assert got[codec.HEADER_SCHEMA_VERSION] == str(codec.COMMIT_SCHEMA_VERSION).encode()


async def test_append_many_keeps_each_keys_order_and_returns_every_position(
    kafka_broker: Broker, kafka_topic: str, event_log: KafkaEventLog
) -> None:
    """The inbound waves' append: all records handed over before any acknowledgement."""
    commits = [make_commit(pid, n) for n in range(3) for pid in ("p1", "p2", "p3")]
    positions = await event_log.append_many(commits)
    assert len(positions) == len(commits)
    for pid in ("p1", "p2", "p3"):
        mine = [pos for c, pos in zip(commits, positions, strict=True) if c.participant_id == pid]
        assert len({pos.partition for pos in mine}) == 1
        assert mine[0].partition == java_choice(participant_key("t1", pid), 6)
        assert [pos.offset for pos in mine] == sorted(pos.offset for pos in mine)
    assert len(set(positions)) == len(positions)
    # Read back by position (not via read_all: tansu reports a multi-record batch's end offset as
    # its base offset + 1, which read_all's end check would take for a short read).
    source = KafkaLogSource(kafka_broker.bootstrap, kafka_topic, group_id=None)
    await source.start(starting_at({}, []))
    at: dict[tuple[int, int], Commit] = {}
    deadline = time.monotonic() + 15
    try:
        while len(at) < len(commits) and time.monotonic() < deadline:
            for partition, records in (await source.read(500, 0.2)).items():
                at.update({(partition, r.offset): codec.decode(r.value) for r in records})
    finally:
        await source.stop()
    assert [at.get((pos.partition, pos.offset)) for pos in positions] == commits
    assert await event_log.append_many([]) == []


async def test_start_creates_missing_topic_with_requested_partitions(
    kafka_broker: Broker, kafka_topic: str
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    await admin.start()
    try:
        assert kafka_topic not in await admin.list_topics()
        log = await started_log(kafka_broker, kafka_topic, 4)
        await log.stop()
        again = await started_log(kafka_broker, kafka_topic, 4)  # already exists: not an error
        position = await again.append(make_commit("p1", 0))
        await again.stop()
        (described,) = await admin.describe_topics([kafka_topic])
    finally:
        await admin.close()
    assert described["error_code"] == 0
    assert sorted(p["partition"] for p in described["partitions"]) == [0, 1, 2, 3]
    assert position == LogPosition(java_choice(participant_key("t1", "p1"), 4), 0)


async def test_source_waits_for_the_topic_instead_of_auto_creating_it(
    kafka_broker: Broker, kafka_topic: str
) -> None:
    # A source that gave up waiting (a definite event, not a sleep) left no topic behind.
    impatient = KafkaLogSource(kafka_broker.bootstrap, kafka_topic, group_id=None, topic_wait=1)
    with pytest.raises(TimeoutError, match=kafka_topic):
        await impatient.start(starting_at({}, []))
    await impatient.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap)
    await admin.start()
    try:
        assert kafka_topic not in await admin.list_topics()
    finally:
        await admin.close()
    # A patient one, started before the topic exists, starts once it is created.
    source = KafkaLogSource(kafka_broker.bootstrap, kafka_topic, group_id=None, topic_wait=10)
    starting = asyncio.create_task(source.start(starting_at({}, [])))
    log = await started_log(kafka_broker, kafka_topic, 3)
    try:
        await asyncio.wait_for(starting, 10)
        await log.append(make_commit("p1", 0))
        ends = await source.end_offsets()
    finally:
        await source.stop()
        await log.stop()
    assert sorted(ends) == [0, 1, 2]
    assert sum(ends.values()) == 1


async def test_missing_topic_times_out_clearly(kafka_broker: Broker, kafka_topic: str) -> None:
    source = KafkaLogSource(kafka_broker.bootstrap, kafka_topic, group_id=None, topic_wait=0.3)
    with pytest.raises(TimeoutError, match=kafka_topic):
        await source.start(starting_at({}, []))


async def test_group_source_starts_at_store_positions_and_commits(
    kafka_broker: Broker, kafka_topic: str
) -> None:
    log = await started_log(kafka_broker, kafka_topic, 2)
    written: dict[int, list[Commit]] = defaultdict(list)
    try:
        for n in range(5):
            for pid in ("a", "b", "c", "d", "e", "f"):
                commit = make_commit(pid, n)
                written[(await log.append(commit)).partition].append(commit)
    finally:
        await log.stop()
    assert sorted(written) == [0, 1], "six keys should use both partitions"
    skip = 3  # the store already has the first 3 records of partition 0; nothing of 1

    group = f"g-{uuid.uuid4().hex[:8]}"
    calls: list[list[int]] = []
    source = KafkaLogSource(
        kafka_broker.bootstrap,
        kafka_topic,
        group_id=group,
        session_timeout_ms=session_ms(kafka_broker),
    )
    await source.start(starting_at({0: skip}, calls))
    try:
        expected = len(written[0]) - skip + len(written[1])
        read = await read_all(source, expected, timeout=20)
        assert calls == [[0, 1]]
        assert [r.offset for r in read[0]] == list(range(skip, len(written[0])))
        assert [r.offset for r in read[1]] == list(range(len(written[1])))
        assert [codec.decode(r.value) for r in read[0]] == written[0][skip:]
        assert [codec.decode(r.value) for r in read[1]] == written[1]
        ends = {0: len(written[0]), 1: len(written[1])}
        assert await source.end_offsets() == ends
        await source.committed(ends)
        await source.committed({7: 1})  # not assigned: ignored, never raises
    finally:
        await source.stop()
    await source.committed(ends)  # stopped: a no-op

    check = AIOKafkaConsumer(bootstrap_servers=kafka_broker.bootstrap, group_id=group)
    await check.start()
    try:
        for partition, end in ends.items():
            assert await check.committed(TopicPartition(kafka_topic, partition)) == end
    finally:
        await check.stop()


async def test_group_source_fails_reads_when_start_positions_fails(
    kafka_broker: Broker, kafka_topic: str
) -> None:
    log = await started_log(kafka_broker, kafka_topic, 1)
    try:
        await log.append(make_commit("p1", 0))
    finally:
        await log.stop()

    async def broken(partitions: Sequence[int]) -> dict[int, int]:
        raise OSError("store unavailable")

    source = KafkaLogSource(
        kafka_broker.bootstrap,
        kafka_topic,
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        session_timeout_ms=session_ms(kafka_broker),
    )
    await source.start(broken)
    try:
        with pytest.raises(RuntimeError, match="could not position"):
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                assert not await source.read(100, 0.2), "records from unchosen positions"
    finally:
        await source.stop()


def test_partition_choice_matches_java_murmur2() -> None:
    rng = random.Random(20260101)
    keys = [rng.randbytes(rng.randrange(0, 48)) for _ in range(400)]
    keys += [participant_key(f"t{rng.randrange(9)}", str(uuid.uuid4())) for _ in range(200)]
    partitioner = Murmur2Partitioner()
    for key in keys:
        assert murmur2(key) == aiokafka_murmur2(key)
        for partitions in (1, 2, 3, 6, 7, 12, 64, 100):
            expected = java_choice(key, partitions)
            assert java_partition(key, partitions) == expected
            all_partitions = list(range(partitions))
            assert partitioner(key, all_partitions, all_partitions[::-1]) == expected
    # Known answers of the Java client's Utils.murmur2 (as signed ints), from Kafka's UtilsTest.
    java = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for key, signed in java.items():
        assert murmur2(key) == signed & 0xFFFFFFFF
    assert partitioner(None, [0, 1, 2], [1]) == 1  # unkeyed: aiokafka's default behaviour


async def test_appends_land_on_the_java_partition(kafka_broker: Broker, kafka_topic: str) -> None:
    log = await started_log(kafka_broker, kafka_topic, 7)
    try:
        positions = {}
        for i in range(60):
            commit = make_commit(f"user-{i}", 0, tenant=f"tenant{i % 3}")
            positions[commit.key] = await log.append(commit)
    finally:
        await log.stop()
    assert {k: p.partition for k, p in positions.items()} == {
        k: java_choice(k, 7) for k in positions
    }


async def test_own_appends_reach_the_source_at_once_and_match_the_log(
    kafka_broker: Broker, kafka_topic: str
) -> None:
    """A serve process's acknowledged appends are handed out without the fetch, in log order.

    Two producers interleave (only one hands its appends over), appends go concurrently (so
    the client batches them): every offset is read exactly once, with the log's bytes.
    """
    source = KafkaLogSource(
        kafka_broker.bootstrap,
        kafka_topic,
        group_id=f"g-{uuid.uuid4().hex[:8]}",
        session_timeout_ms=session_ms(kafka_broker),
        own_appends=True,
    )
    ours = await started_log(kafka_broker, kafka_topic, 3)
    other = await started_log(kafka_broker, kafka_topic, 3)
    ours.on_appended = source.offer
    await source.start(starting_at({}, []))
    found: dict[int, list[LogRecord]] = defaultdict(list)
    try:
        deadline = time.monotonic() + 20
        while not source.joined:
            assert time.monotonic() < deadline, "the group never assigned the partitions"
            assert not await source.read(500, 0.2)
        total = 0
        for n in range(6):
            commits = [make_commit(f"p{i}", n) for i in range(30)]
            if n % 3 == 2:  # a wave of the inbound processor: handed over as well
                batch: list[Any] = [ours.append_many(commits)]
            else:
                batch = [ours.append(c) for c in commits]
            if n % 2:
                batch += [other.append(make_commit(f"q{i}", n)) for i in range(10)]
            await asyncio.gather(*batch)
            total += len(commits) + (10 if n % 2 else 0)
            for partition, records in (await source.read(500, 0.5)).items():
                found[partition].extend(records)
        await read_count(source, found, total)
        assert source.own.handed > 0, "no append was handed over without the fetch"
        # Let the consumer fetch every handed-out record back: their bytes are compared.
        for _ in range(5):
            assert not await source.read(500, 0.2)
        assert not source.own._unconfirmed, "handed-out records were never fetched back"
    finally:
        await source.stop()
        await ours.stop()
        await other.stop()
    for partition, records in found.items():
        assert [r.offset for r in records] == list(range(len(records))), partition
    check = KafkaLogSource(kafka_broker.bootstrap, kafka_topic, group_id=None)
    await check.start(starting_at({}, []))
    log: dict[int, list[LogRecord]] = defaultdict(list)
    try:
        await read_count(check, log, total)
    finally:
        await check.stop()
    assert {p: [r.value for r in rs] for p, rs in log.items()} == {
        p: [r.value for r in rs] for p, rs in found.items()
    }


async def read_count(
    source: KafkaLogSource, found: dict[int, list[LogRecord]], total: int, timeout: float = 20
) -> None:
    """Read into ``found`` until it holds ``total`` records (tansu's end offsets count batches)."""
    deadline = time.monotonic() + timeout
    while sum(map(len, found.values())) < total:
        assert time.monotonic() < deadline, f"read {sum(map(len, found.values()))} of {total}"
        for partition, records in (await source.read(500, 0.2)).items():
            found[partition].extend(records)

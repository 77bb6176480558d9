"""One contract for every EventLog with its LogSource: the embedded SQLite log and Kafka."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from projections import runner
from projections.db import open_database
from projections.participants.queries import ParticipantQueries
from projections.participants.store import participant_store
from projections.sources.kafka import KafkaLogSource
from projections.sources.sqlite import SqliteLogSource
from schemas.codec import decode
from schemas.events import Causation, Commit, ParticipantRegistered, PointsAwarded
from schemas.log import LogRecord
from services.adapters.kafka_event_log import KafkaEventLog
from services.adapters.sqlite_event_log import SqliteEventLog
from tests.kafka_broker import Broker


def make_commit(pid: str, version: int, amount: int = 1, *, cid: str | None = None) -> Commit:
    events: tuple[Any, ...] = (PointsAwarded(uuid.uuid4().hex, amount, amount * (version + 1)),)
    if version == 0:
        events = (ParticipantRegistered(auto_created=True), *events)
    return Commit(
        cid or uuid.uuid4().hex,
        "acme",
        pid,
        version,
        "2026-02-14T10:00:00Z",
        Causation("points.award"),
        events,
    )


async def read_all(source: Any, expected: int, timeout: float = 20.0) -> list[LogRecord]:
    async def from_zero(partitions: Any) -> dict[int, int]:
        return {}

    await source.start(from_zero)
    got: list[LogRecord] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while len(got) < expected and loop.time() < deadline:
            for records in (await source.read(500, 0.5)).values():
                got.extend(records)
    finally:
        await source.stop()
    return got


class EventLogContract:
    """Subclasses provide ``opened()``: a started log, and a factory of fresh sources."""

    partitions = 1

    def opened(self) -> Any:
        raise NotImplementedError

    async def test_appends_return_increasing_offsets_per_participant(self) -> None:
        async with self.opened() as (log, _):
            positions = [await log.append(make_commit("u1", v)) for v in range(5)]
        assert len({p.partition for p in positions}) == 1
        offsets = [p.offset for p in positions]
        assert offsets == sorted(offsets) and len(set(offsets)) == 5

    async def test_what_is_appended_reads_back_as_equal_commits_in_order(self) -> None:
        commits = [make_commit(f"u{i % 4}", i // 4) for i in range(20)]
        async with self.opened() as (log, new_source):
            positions = [await log.append(c) for c in commits]
            got = await read_all(new_source(), len(commits))
        by_position = {(r.partition, r.offset): decode(r.value) for r in got}
        assert [by_position[(p.partition, p.offset)] for p in positions] == commits
        for pid in ("u0", "u1", "u2", "u3"):
            mine = [
                r
                for r in sorted(got, key=lambda r: (r.partition, r.offset))
                if decode(r.value).participant_id == pid
            ]
            assert [decode(r.value).expected_version for r in mine] == [0, 1, 2, 3, 4]

    async def test_a_commit_appended_twice_is_projected_once(self, tmp_path: Path) -> None:
        twice = make_commit("u1", 0, 7)
        async with self.opened() as (log, new_source):
            await log.append(twice)
            await log.append(twice)
            await log.append(make_commit("u1", 1, 3))
            balance = await project_and_read_balance(new_source(), tmp_path, "u1")
        assert balance == 7 + 3

    async def test_end_offsets_cover_every_append(self) -> None:
        async with self.opened() as (log, new_source):
            positions = [await log.append(make_commit(f"p{i}", 0)) for i in range(6)]
            source = new_source()

            async def none(partitions: Any) -> dict[int, int]:
                return {}

            await source.start(none)
            ends = await source.end_offsets()
            await source.stop()
        for p in positions:
            assert ends[p.partition] > p.offset


async def project_and_read_balance(source: Any, tmp_path: Path, pid: str) -> int:
    datastore = open_database(f"sqlite:///{tmp_path / uuid.uuid4().hex}.db")
    store = participant_store(datastore)
    store.create_table()
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(source, store, stop, poll_timeout=0.2))
    queries = ParticipantQueries(datastore)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    row = None
    while loop.time() < deadline:
        row = queries.participant("acme", pid)
        if row is not None and row.version == 2:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await task
    datastore.close()
    assert row is not None
    return row.balance


class TestEmbeddedLog(EventLogContract):
    @pytest.fixture(autouse=True)
    def _path(self, tmp_path: Path) -> None:
        self.path = str(tmp_path / "log.db")

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[Any]:
        sources: list[SqliteLogSource] = []

        def new_source() -> SqliteLogSource:
            sources.append(SqliteLogSource(self.path, "gamify.participant-events"))
            return sources[-1]

        log = SqliteEventLog(self.path)
        try:
            yield log, new_source
        finally:
            log.close()
            for s in sources:
                s.close()

    async def test_appends_survive_reopening_the_file(self) -> None:
        commit = make_commit("u1", 0)
        async with self.opened() as (log, _):
            await log.append(commit)
        async with self.opened() as (_, new_source):
            [record] = await read_all(new_source(), 1)
        assert decode(record.value) == commit

    async def test_concurrent_appends_are_written_together_each_at_its_own_offset(
        self, tmp_path: Path
    ) -> None:
        commits = [make_commit(f"u{i}", 0) for i in range(40)]
        again = commits[3]  # a commit appended twice in one group: one record, one position
        async with self.opened() as (log, new_source):
            await log.append(make_commit("first", 0))
            positions = await asyncio.gather(*(log.append(c) for c in [*commits, again]))
            got = await read_all(new_source(), len(commits) + 1)
        by_offset = {r.offset: decode(r.value) for r in got}
        assert [by_offset[p.offset] for p in positions] == [*commits, again]
        assert positions[3] == positions[-1]
        assert sorted(p.offset for p in positions[:-1]) == list(range(1, 41))


class TestKafkaLog(EventLogContract):
    @pytest.fixture(autouse=True)
    def _broker(self, kafka_broker: Broker, kafka_topic: str) -> None:
        self.broker, self.topic = kafka_broker, kafka_topic

    @asynccontextmanager
    async def opened(self) -> AsyncIterator[Any]:
        log = KafkaEventLog(
            self.broker.bootstrap,
            self.topic,
            partitions=3,
            idempotence=self.broker.idempotence_supported,
        )
        await log.start()
        try:
            yield log, lambda: KafkaLogSource(self.broker.bootstrap, self.topic, group_id=None)
        finally:
            await log.stop()

"""Peak RSS of `gamify serve` with N participants in its read models.

Projecting N participants through the service would take minutes at 1,000,000, so the store is
pre-built with the product's own fold (``apply_commit`` on each participant's registering award,
``row_to_db``, the store's ``participant_upsert`` statement). The service then projects a tail of
commits from its Kafka topic (awards to existing participants), serves random GET profiles over
all N participants and awards; VmHWM is read from /proc at the end.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from bench.env import TENANT
from bench.workload import Record, pid_of, produce
from projections.db import open_database
from projections.participants.projector import apply_commit
from projections.participants.schema import STATEMENTS
from projections.participants.store import participant_store, row_to_db
from schemas import codec
from schemas.events import Causation, Commit, ParticipantRegistered, PointsAwarded
from services.adapters.kafka_event_log import java_partition

CHUNK = 50_000


def _commit(i: int, version: int) -> Commit:
    events: tuple[Any, ...] = (
        PointsAwarded(
            transaction_id=f"tx-m{version}-{i}", amount=10, balance_after=10 * (version + 1),
            reason="order", metadata={},
        ),
    )  # fmt: skip
    if version == 0:
        events = (ParticipantRegistered(display_name=f"User {i}", auto_created=False), *events)
    return Commit(
        commit_id=f"m{version}-{i:012d}",
        tenant=TENANT,
        participant_id=pid_of(i),
        expected_version=version,
        recorded_at="2026-02-14T10:00:00Z",
        causation=Causation(command="points.award", idempotency_key=f"m-{i}-{version}"),
        events=events,
    )


def prebuild(path: Path, participants: int) -> float:
    """A SQLite read-model store holding ``participants`` participants (version 1).

    Every participant's row is what the product's fold makes of its registering award: the
    fold runs for participant 0, the other rows differ only in the id and the display name
    (checked against the full fold every 10,000 participants).
    """
    started = time.perf_counter()
    db = open_database(f"sqlite:///{path}")
    try:
        store = participant_store(db)
        store.create_table()
        upsert = store.sql(STATEMENTS["participant_upsert"])
        template = list(_row(0))
        at_pid, at_name = template.index(pid_of(0)), template.index("User 0")
        for start in range(0, participants, CHUNK):
            rows = []
            for i in range(start, min(participants, start + CHUNK)):
                template[at_pid], template[at_name] = pid_of(i), f"User {i}"
                row = tuple(template)
                if i % 10_000 == 0 and row != _row(i):
                    raise RuntimeError(f"pre-built row of participant {i} differs from the fold")
                rows.append(row)
            with db.transaction(commit=True) as c:
                c.executemany(upsert, rows)
    finally:
        db.close()
    return time.perf_counter() - started


def _row(i: int) -> tuple[Any, ...]:
    verdict = apply_commit(None, _commit(i, 0), key_used=False)
    assert verdict.row is not None
    return tuple(row_to_db(verdict.row))


async def produce_tail(bootstrap: str, topic: str, count: int, partitions: int) -> dict[int, int]:
    """Awards (version 1 -> 2) to the first ``count`` participants, on the service's topic."""
    by_partition: dict[int, list[Record]] = {p: [] for p in range(partitions)}
    for i in range(count):
        commit = _commit(i, 1)
        by_partition[java_partition(commit.key, partitions)].append(
            (commit.key, codec.encode(commit), codec.headers(commit))
        )
    return await produce(bootstrap, topic, by_partition, partitions)


async def wait_projected(path: Path, topic: str, ends: dict[int, int], cap: float) -> float:
    """Seconds until the service's store holds positions at ``ends`` (or the cap)."""
    started = time.perf_counter()
    db = open_database(f"sqlite:///{path}", pool_size=1)
    try:
        store = participant_store(db)
        while time.perf_counter() - started < cap:
            found = await asyncio.to_thread(store.next_offsets, topic, sorted(ends))
            if all(found.get(p, 0) >= end for p, end in ends.items()):
                break
            await asyncio.sleep(0.1)
    finally:
        db.close()
    return time.perf_counter() - started

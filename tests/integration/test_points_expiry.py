"""Point expiry with schedulers racing: every credit expires once, and a replay agrees.

Over the embedded SQLite log with the read models in SQLite and PostgreSQL: two "scheduler
processes" (each its own handler locks, so the participant streams see real conflicts) run
their passes at the same moment; a third pass afterwards and a retry find nothing left. The log
holds exactly one PointsExpired per lot, balances lose only what was unspent, and rebuilding the
read models from the log gives the same rows (replay determinism).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from projections import runner
from projections.db import Database, rows
from projections.definitions.queries import DefinitionQueries
from projections.participants.expiry_queries import ExpiryQueries
from projections.participants.queries import ParticipantQueries
from projections.participants.store import participant_store
from projections.progress import Progress
from projections.rebuild import compare
from projections.replay import READ_MODELS
from schemas.codec import decode
from schemas.events import PointsExpired
from services.adapters.read_model import ReadModelReader
from services.participants.commands import AwardPoints, DeductPoints
from services.participants.handlers import Context, Deps, execute
from services.scheduler import ExpiryScheduler

TENANT = "acme"
CTX = Context(TENANT)
AWARDED_AT = datetime(2026, 3, 1, 12, tzinfo=UTC)
EXPIRES = "2026-03-02T00:00:00Z"
AFTER = datetime(2026, 3, 2, 0, 0, 5, tzinfo=UTC)


@dataclass
class World:
    db: Database
    log: Any
    path: str
    topic: str
    processes: list[Deps]
    participants: ParticipantQueries

    def scheduler(self, proc: int, batch: int = 500) -> ExpiryScheduler:
        queries = ExpiryQueries(self.db)
        return ExpiryScheduler(self.processes[proc], queries, clock=lambda: AFTER, batch=batch)

    async def row(self, pid: str) -> Any:
        return await asyncio.to_thread(self.participants.participant, TENANT, pid)


@pytest.fixture
async def world(db: Database, tmp_path: Path) -> AsyncIterator[World]:
    from projections.sources.sqlite import SqliteLogReader, SqliteLogSource
    from services.adapters.sqlite_event_log import SqliteEventLog

    topic, path = "gamify.participant-events", str(tmp_path / "log.db")
    source = SqliteLogSource(path, topic)
    log = SqliteEventLog(path, on_append=source.wake)
    log_reader = SqliteLogReader(path)  # a repeated expiry key reads its original commit back
    store = participant_store(db)
    await asyncio.to_thread(store.create_table)
    participants = ParticipantQueries(db)
    progress = Progress(lambda p: participants.next_offset(topic, p))
    ids = itertools.count()

    def new_deps() -> Deps:  # its own locks: another process on the same log and store
        return Deps(
            log=log,
            reader=ReadModelReader(participants, DefinitionQueries(db), log=log_reader),
            progress=progress,
            clock=lambda: AWARDED_AT,
            new_id=lambda: f"id-{next(ids)}",
            projection_timeout=30.0,
        )

    stop = asyncio.Event()
    projector = asyncio.create_task(
        runner.run(source, store, stop, on_advance=progress.advance, poll_timeout=0.02)
    )
    try:
        yield World(db, log, path, topic, [new_deps(), new_deps()], participants)
    finally:
        stop.set()
        await asyncio.wait_for(projector, 10)
        log.close()
        log_reader.close()
        source.close()
    assert not projector.exception()


def select(world: World, sql: str) -> list[tuple[Any, ...]]:
    with world.db.transaction(commit=False) as c:
        c.execute(world.db.sql(sql))
        return rows(c)


async def logged_expiries(world: World) -> list[tuple[str, str, int]]:
    """(participant, lot, amount) of every PointsExpired on the log."""
    from projections.sources.sqlite import SqliteLogSource

    source = SqliteLogSource(world.path, world.topic)
    found = []
    try:
        source.next_offset = 0
        while batch := (await source.read(10_000, 0.05)).get(0):
            for record in batch:
                commit = decode(record.value)
                found.extend(
                    (commit.participant_id, e.lot_id, e.amount)
                    for e in commit.events
                    if isinstance(e, PointsExpired)
                )
    finally:
        source.close()
    return found


async def test_two_schedulers_at_once_expire_every_credit_once(world: World) -> None:
    pids = [f"p{i}" for i in range(8)]
    for i, pid in enumerate(pids):
        await execute(world.processes[0], CTX, AwardPoints(pid, 100))  # never expires
        await execute(world.processes[0], CTX, AwardPoints(pid, 40, expires_at=EXPIRES))
        await execute(world.processes[0], CTX, AwardPoints(pid, 10, expires_at=EXPIRES))
        if i % 2:
            await execute(world.processes[0], CTX, DeductPoints(pid, 45))  # 40 + 5 of the 10

    first, second = await asyncio.gather(
        world.scheduler(0, batch=3).tick(), world.scheduler(1, batch=3).tick()
    )
    assert first.failed == second.failed == 0
    assert first.expired + second.expired == 8 * 2 - 4  # odd participants: one lot was spent
    again = await world.scheduler(0).tick()
    assert again.expired == again.failed == 0

    # Where both appended for a lot (they interleave: usually), the projector applied one commit
    # and rejected the other (version conflict or used key): one expire row per lot.
    logged = await logged_expiries(world)
    assert len({(p, lot) for p, lot, _ in logged}) == 12 and len(logged) >= 12
    applied = select(
        world, "SELECT participant_id, metadata FROM points_ledger WHERE kind = 'expire'"
    )
    assert len(applied) == len(set(applied)) == 12
    for i, pid in enumerate(pids):
        row = await world.row(pid)
        expected = (100, 150, 45) if i % 2 else (100, 150, 0)
        assert (row.balance, row.total_earned, row.total_spent) == expected, pid
        assert row.sections["point_lots"] == []
    due = await asyncio.to_thread(ExpiryQueries(world.db).due, "2100-01-01T00:00:00Z", 100)
    assert due == []


async def test_a_replay_of_the_log_rebuilds_the_same_read_models(world: World) -> None:
    from projections.sources.sqlite import SqliteLogSource

    await execute(world.processes[0], CTX, AwardPoints("r1", 30, expires_at=EXPIRES))
    await execute(world.processes[0], CTX, AwardPoints("r1", 20, expires_at="2027-01-01T00:00:00Z"))
    await execute(world.processes[0], CTX, DeductPoints("r1", 5))
    await asyncio.gather(world.scheduler(0).tick(), world.scheduler(1).tick())

    check = participant_store(world.db, suffix="__check")
    await asyncio.to_thread(check.create_table)
    source = SqliteLogSource(world.path, world.topic)
    try:
        end = await source.end_offsets()
        await asyncio.wait_for(
            runner.run(source, check, asyncio.Event(), until=end, poll_timeout=0.02), 30
        )
    finally:
        source.close()
    with world.db.transaction(commit=False) as c:
        assert (
            compare((world.db, c), (world.db, c), READ_MODELS["participants"], "", "__check") == []
        )
    row = await world.row("r1")
    assert (row.balance, row.total_earned, row.total_spent) == (20, 50, 5)
    next_due = await asyncio.to_thread(ExpiryQueries(world.db).next_expiry, TENANT, "r1")
    assert next_due == "2027-01-01T00:00:00Z"

"""Kill the projector process at random moments; the read models still hold every commit once.

Modelled on Kafka Streams' exactly-once system test: a known workload (3000 commits over 200
participants, with re-appended duplicates, stale commits and reused idempotency keys) goes to
the participant-events topic in five bursts, each while the projector is down, so that every
run of `python -m services project` starts with a backlog; four times the projector is
SIGKILLed once it has applied a random part of its backlog, and started again. Once the
store's positions equal the acknowledged end offsets, every balance, total, ledger line,
version and verdict count must equal what the workload implies: nothing lost, nothing doubled.
"""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path
from typing import Any

import pytest

from projections.db import open_database
from services.adapters.kafka_event_log import KafkaEventLog
from tests.kafka_broker import Broker
from tests.system.support import (
    append_chains,
    eventually,
    kafka_env,
    make_workload,
    new_prefix,
    positions,
    verify_store,
)

PARTICIPANTS = 200
COMMITS_EACH = 15  # 3000 records
PARTITIONS = 6
KILLS = 4


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'read-models.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


async def test_projector_killed_at_random_moments_neither_loses_nor_doubles(
    kafka_broker: Broker, processes: Any, store_url: str
) -> None:
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    workload = make_workload(PARTICIPANTS, COMMITS_EACH, seed=7)
    assert workload.records == PARTICIPANTS * COMMITS_EACH
    assert workload.duplicates > 0 and workload.outcomes["conflict"] > 0
    assert workload.outcomes["duplicate"] > 0

    prefix = new_prefix()
    topic = f"{prefix}participant-events"
    log = KafkaEventLog(
        kafka_broker.bootstrap,
        topic,
        partitions=PARTITIONS,
        idempotence=kafka_broker.idempotence_supported,
        client_id="system-test",
    )
    await log.start()  # creates the topic with its partitions before any process names it
    env = kafka_env(kafka_broker, prefix, PARTITIONS)
    env.update({"GAMIFY_DATABASE_URL": store_url, "GAMIFY_API_KEYS": "acme:k-acme"})
    projector = processes("project", env, "projector").start()
    db = open_database(store_url, pool_size=2)  # the tables exist once the projector is healthy
    kills: list[tuple[int, int]] = []

    def projected() -> int:
        return sum(positions(db, topic).values())

    ends: dict[int, int] = {}  # acknowledged appends so far, per partition
    bursts = workload.phases(KILLS + 1)
    try:
        for burst in bursts[:-1]:
            # A burst of commits while the projector is down (or still joining), so that the
            # restarted one has a backlog; kill it once it applied a random part of that backlog.
            before = await asyncio.to_thread(projected)
            await append_chains(log, burst, ends=ends)
            backlog = sum(ends.values()) - before
            target = before + max(1, int(backlog * rng.uniform(0.05, 0.8)))
            if not projector.running:
                projector.start()
            await eventually(
                lambda: asyncio.to_thread(projected),
                lambda n, t=target: n >= t,
                timeout=60,
                interval=0.005,
                what=f"projector progress in run {projector.runs}",
                context=projector.tail,
            )
            await asyncio.sleep(rng.uniform(0.0, 0.02))
            code = projector.kill()
            kills.append((await asyncio.to_thread(projected), sum(ends.values())))
            assert code == -9, projector.tail()
        await append_chains(log, bursts[-1], ends=ends)
        projector.start()
        assert sum(ends.values()) == workload.records
        assert sorted(ends) == list(range(PARTITIONS))
        await eventually(
            lambda: asyncio.to_thread(positions, db, topic),
            lambda found: found == ends,
            timeout=90,
            what="store positions == acknowledged end offsets",
            context=projector.tail,
        )
        print(f"kill seed {seed}; (projected, acknowledged) at each kill: {kills}")
        assert projector.terminate() == 0, projector.tail()
        assert projector.runs == KILLS + 1
        # The kills must have hit a projector with work in flight, not an idle one.
        assert any(at < acked for at, acked in kills), kills
        await asyncio.to_thread(verify_store, db, workload)
    finally:
        db.close()
        await log.stop()

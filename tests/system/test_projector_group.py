"""Two projector processes in one consumer group share a topic and one PostgreSQL store.

Phase 1: both `python -m services project` processes run over a 6-partition topic and each
projects some of it (its own `/metrics` count of commits is > 0). Phase 2: while more of the
workload is being produced, one of them is stopped with SIGTERM and the other takes over its
partitions. The shared store must then equal, row for row, the store a single projector builds
from the same log into a fresh schema, and both must equal the totals the workload implies.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

from projections.db import open_database
from projections.participants.store import participant_store
from services.adapters.kafka_event_log import KafkaEventLog
from tests.kafka_broker import Broker
from tests.postgres import drop_schema, new_schema
from tests.system.support import (
    append_chains,
    eventually,
    kafka_env,
    make_workload,
    merge_ends,
    new_prefix,
    positions,
    table,
    verify_store,
)

PARTITIONS = 6
COMMITS = "gamify_projector_commits_total"

TABLES = {
    "participants": "SELECT * FROM participants ORDER BY tenant, participant_id",
    "points_ledger": "SELECT * FROM points_ledger ORDER BY tenant, participant_id, version, idx",
    "commit_outcomes": "SELECT * FROM commit_outcomes ORDER BY commit_id",
    "idempotency_keys": "SELECT * FROM idempotency_keys ORDER BY tenant, participant_id, "
    "idempotency_key",
    "tracking": "SELECT * FROM tracking ORDER BY application_name",
}


async def group_members(bootstrap: str, group: str) -> tuple[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_consumer_groups([group])
        found = described[0].groups[0]
        return found[2], len(found[5])  # state, members
    finally:
        await admin.close()


async def test_two_projectors_share_partitions_and_a_stop_loses_nothing(
    kafka_broker: Broker, processes: Any, postgres_url: str, postgres_schema_url: str
) -> None:
    workload = make_workload(150, 12, seed=11)  # 1800 records
    first, second = workload.phases(2)
    prefix = new_prefix()
    topic = f"{prefix}participant-events"
    log = KafkaEventLog(
        kafka_broker.bootstrap,
        topic,
        partitions=PARTITIONS,
        idempotence=kafka_broker.idempotence_supported,
        client_id="system-test",
    )
    await log.start()
    env = kafka_env(kafka_broker, prefix, PARTITIONS)
    env["GAMIFY_API_KEYS"] = "acme:k-acme"
    shared = dict(env, GAMIFY_DATABASE_URL=postgres_schema_url)
    a = processes("project", shared, "projector-a")
    b = processes("project", shared, "projector-b")
    # One after the other: started at the same instant on a fresh schema, one of them may die
    # creating the tables (see test_concurrent_start_on_a_fresh_schema below).
    a.start()
    b.start()
    both = lambda: a.tail() + "\n" + b.tail()  # noqa: E731
    await eventually(
        lambda: group_members(kafka_broker.bootstrap, f"{prefix}projections.participants"),
        lambda found: found == ("Stable", 2),
        timeout=30,
        what="both projectors in a stable group",
        context=both,
    )

    reference_schema = new_schema(postgres_url)
    db = open_database(postgres_schema_url, pool_size=2)
    ref = open_database(f"{postgres_url}?schema={reference_schema}", pool_size=2)
    try:
        # Phase 1: both projectors run; each must project a share of the partitions.
        ends = await append_chains(log, first, pause=0.05)
        await eventually(
            lambda: asyncio.to_thread(positions, db, topic),
            lambda found: found == ends,
            timeout=60,
            what="phase 1 projected",
            context=both,
        )
        verdicts = {
            name: {v: p.metric(COMMITS, verdict=v) for v in ("applied", "rejected", "redelivered")}
            for name, p in (("a", a), ("b", b))
        }
        print(f"phase 1 verdicts per projector: {verdicts}")
        shares = {name: v["applied"] for name, v in verdicts.items()}
        assert all(n > 0 for n in shares.values()), f"a projector got no partitions: {verdicts}"
        # Each commit got exactly one verdict, from one of the two (a record re-read around a
        # rebalance is skipped as "redelivered", never applied twice).
        decided = sum(v["applied"] + v["rejected"] for v in verdicts.values())
        assert decided == len({c.commit_id for chain in first for c in chain}), verdicts

        # Phase 2: stop b (SIGTERM) while the rest of the workload is being produced.
        acked: dict[int, int] = {}
        producing = asyncio.create_task(append_chains(log, second, pause=0.4, ends=acked))
        await eventually(
            lambda: asyncio.to_thread(lambda: sum(positions(db, topic).values())),
            lambda n: n > sum(ends.values()),
            timeout=60,
            what="phase 2 under way",
            context=both,
        )
        assert b.terminate() == 0, b.tail()
        await producing
        ends = merge_ends(ends, acked)
        assert sum(ends.values()) == workload.records
        await eventually(
            lambda: asyncio.to_thread(positions, db, topic),
            lambda found: found == ends,
            timeout=60,
            what="phase 2 projected by the survivor",
            context=a.tail,
        )
        assert a.metric(COMMITS) > shares["a"]
        assert a.terminate() == 0, a.tail()

        # A single projector over the same log, into a fresh schema.
        single = processes(
            "project",
            dict(env, GAMIFY_DATABASE_URL=f"{postgres_url}?schema={reference_schema}"),
            "projector-single",
        ).start()
        await eventually(
            lambda: asyncio.to_thread(positions, ref, topic),
            lambda found: found == ends,
            timeout=90,
            what="single projector caught up",
            context=single.tail,
        )
        assert single.metric(COMMITS) == workload.records
        assert single.terminate() == 0, single.tail()

        for name, sql in TABLES.items():
            got, want = table(db, sql), table(ref, sql)
            assert len(got) == len(want), f"{name}: {len(got)} rows, single projector {len(want)}"
            diff = [(g, w) for g, w in zip(got, want, strict=True) if g != w]
            assert not diff, f"{name}: {len(diff)} rows differ, e.g. {diff[:3]}"
        verify_store(db, workload)
        verify_store(ref, workload)
    finally:
        db.close()
        ref.close()
        await log.stop()
        drop_schema(postgres_url, reference_schema)


def test_concurrent_start_on_a_fresh_schema(postgres_url: str) -> None:
    """Replicas (or api + project + inbound) starting at once each create the tables."""
    errors: list[str] = []
    for _ in range(3):
        schema = new_schema(postgres_url)
        dbs = [open_database(f"{postgres_url}?schema={schema}", pool_size=1) for _ in range(3)]
        barrier = threading.Barrier(len(dbs))

        def create(db: Any, barrier: threading.Barrier = barrier) -> None:
            store = participant_store(db)
            barrier.wait()
            try:
                store.create_table()  # what every process does at start-up (read_model_ctx)
            except Exception as exc:
                errors.append(repr(exc)[:200])

        threads = [threading.Thread(target=create, args=(db,)) for db in dbs]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for db in dbs:
            db.close()
        drop_schema(postgres_url, schema)
    assert not errors, errors

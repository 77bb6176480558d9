"""Projection and replay rates: the product's runner, store and replay on the produced topic."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.workload import Workload
from projections import runner
from projections.db import open_database, rows
from projections.participants.store import participant_store
from projections.replay import REBUILD, ReplayOptions, replay
from projections.sources import StartPositions
from projections.sources.kafka import KafkaLogSource
from schemas.log import LogRecord
from services.cli import replay_worker


class Timeline:
    """Records projected over time, to tell whether the rate holds as the tables grow."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.points: list[tuple[float, int]] = [(0.0, 0)]
        self.count = 0

    def add(self, records: int) -> None:
        self.count += records
        self.points.append((time.perf_counter() - self.started, self.count))

    def rates(self) -> dict[str, float | None]:
        """Events/s over the first and the last fifth of the events."""
        total = self.count
        if total == 0 or len(self.points) < 3:
            return {"first_fifth": None, "last_fifth": None}

        def at(share: float) -> tuple[float, int]:
            return next(p for p in self.points if p[1] >= share * total)

        t1, n1 = at(0.2)
        t4, n4 = at(0.8)
        t5, n5 = self.points[-1]
        return {
            "first_fifth": n1 / t1 if t1 else None,
            "last_fifth": (n5 - n4) / (t5 - t4) if t5 > t4 else None,
        }


class CountingSource:
    """A LogSource that counts what it hands out (replay() has no progress hook we can read)."""

    def __init__(self, inner: KafkaLogSource, timeline: Timeline) -> None:
        self.inner, self.timeline, self.topic = inner, timeline, inner.topic

    async def start(self, start_positions: StartPositions) -> None:
        await self.inner.start(start_positions)

    async def read(self, max_records: int, timeout: float) -> dict[int, list[LogRecord]]:
        batch = await self.inner.read(max_records, timeout)
        self.timeline.add(sum(len(r) for r in batch.values()))
        return batch

    async def committed(self, positions: dict[int, int]) -> None:
        await self.inner.committed(positions)

    async def end_offsets(self) -> dict[int, int]:
        return await self.inner.end_offsets()

    async def stop(self) -> None:
        await self.inner.stop()

    def partitions(self) -> Sequence[int]:
        return self.inner.partitions()


async def project(bootstrap: str, work: Workload, url: str, cap: float) -> dict[str, Any]:
    """runner.run + participant_store into a fresh store, from offset 0 to the topic's ends."""
    db = open_database(url)
    try:
        store = participant_store(db)
        await asyncio.to_thread(store.create_table)
        source = KafkaLogSource(bootstrap, work.topic, group_id=None, client_id="bench-projector")
        stop = asyncio.Event()
        timeline = Timeline()
        positions: dict[int, int] = {}

        def on_advance(partition: int, next_offset: int) -> None:
            positions[partition] = next_offset
            timeline.add(sum(positions.values()) - timeline.count)

        stopper = asyncio.get_running_loop().call_later(cap, stop.set)
        timeline.started = started = time.perf_counter()
        try:
            stats = await runner.run(source, store, stop, on_advance=on_advance, until=work.ends)
        finally:
            stopper.cancel()
        seconds = time.perf_counter() - started
        check = await asyncio.to_thread(verify, db, "")
    finally:
        db.close()
    return {
        "records": stats.records,
        "batches": stats.batches,
        "seconds": seconds,
        "rate": stats.records / seconds if seconds else 0.0,
        "complete": stats.records >= work.events,
        "capped_at_seconds": None if stats.records >= work.events else cap,
        **timeline.rates(),
        "check": check,
        "check_ok": _check_ok(check, work, stats.records),
    }


async def project_split(
    bootstrap: str, work: Workload, url: str, cap: float, projectors: int
) -> dict[str, Any]:
    """``projectors`` processes (``bench.projector_worker``), each given a share of the partitions,
    project into one fresh PostgreSQL store, as several ``gamify project`` processes of one
    consumer group would (a fixed split here: no group join or rebalance in the timing).

    ``seconds`` runs from spawning the processes (their start-up included) to the last one done.
    """
    db = open_database(url)
    try:
        await asyncio.to_thread(participant_store(db).create_table)  # once, before they start
        shares: list[dict[int, int]] = [{} for _ in range(projectors)]
        for i, (partition, end) in enumerate(sorted(work.ends.items())):
            shares[i % projectors][partition] = end
        started = time.perf_counter()
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.projector_worker",
                url,
                bootstrap,
                work.topic,
                ",".join(f"{p}:{n}" for p, n in share.items()),
                str(cap),
                stdout=asyncio.subprocess.PIPE,
            )
            for share in shares
            if share
        ]
        outputs = [await p.communicate() for p in procs]
        seconds = time.perf_counter() - started
        lines = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs if out]
        records = sum(line["records"] for line in lines)
        busy = max(x["finished"] for x in lines) - min(x["started"] for x in lines)
        check = await asyncio.to_thread(verify, db, "")
    finally:
        db.close()
    return {
        "projectors": projectors,
        "records": records,
        "batches": sum(line["batches"] for line in lines),
        "seconds": seconds,
        "rate": records / seconds if seconds else 0.0,
        "rate_projecting": records / busy if busy else 0.0,
        "complete": records >= work.events,
        "capped_at_seconds": None if records >= work.events else cap,
        "check": check,
        "check_ok": len(lines) == len(procs) and _check_ok(check, work, records),
    }


async def rebuild(
    bootstrap: str, work: Workload, url: str, cap: float, processes: int = 1
) -> dict[str, Any]:
    """projections.replay.replay (shadow tables, then swap) of the whole topic into a fresh store;
    ``processes`` > 1: the product's ``gamify replay --processes`` worker in that many spawned
    processes (PostgreSQL only), which read the broker from GAMIFY_KAFKA_BOOTSTRAP_SERVERS."""
    timeline = Timeline()
    if processes > 1:
        os.environ["GAMIFY_KAFKA_BOOTSTRAP_SERVERS"] = bootstrap  # inherited by the workers

    async def ends() -> dict[int, int]:
        # Not KafkaEndOffsets: tansu answers ListOffsets(latest) with the base offset of the last
        # batch, which would stop the rebuild short (Apache Kafka answers the next offset).
        return dict(work.ends)

    def new_source() -> CountingSource:
        return CountingSource(
            KafkaLogSource(bootstrap, work.topic, group_id=None, client_id="bench-replay"),
            timeline,
        )

    opts = ReplayOptions(
        database_url=url,
        topic=work.topic,
        new_source=new_source,  # type: ignore[arg-type]
        end_offsets=ends,
        out=io.StringIO(),
        processes=processes,
        worker=replay_worker if processes > 1 else None,
    )
    timeline.started = started = time.perf_counter()
    events = 0
    finished = False
    try:
        result = await asyncio.wait_for(replay(opts), cap)
        events, finished = result.commits, True
    except TimeoutError:
        events = timeline.count
    seconds = time.perf_counter() - started
    db = open_database(url)
    try:
        check = await asyncio.to_thread(verify, db, "") if finished else {}
        if not finished and processes > 1:  # the workers' records: the shadow copy's positions
            shadow = participant_store(db, suffix=REBUILD)
            done = await asyncio.to_thread(shadow.next_offsets, work.topic, sorted(work.ends))
            events = sum(done.values())
    finally:
        db.close()
    return {
        "records": events,
        "seconds": seconds,
        "rate": events / seconds if seconds else 0.0,
        "complete": finished and events >= work.events,
        "capped_at_seconds": None if finished else cap,
        **timeline.rates(),
        "check": check,
        "check_ok": finished and _check_ok(check, work, events),
    }


def verify(db: Any, suffix: str) -> dict[str, Any]:
    """Counts that say the read models hold the whole workload."""
    found: dict[str, Any] = {}
    with contextlib.suppress(Exception), db.transaction(commit=False) as c:
        c.execute(f"SELECT COUNT(*), SUM(balance) FROM participants{suffix}")  # noqa: S608
        (count, balance), *_ = rows(c)
        c.execute(f"SELECT status, COUNT(*) FROM commit_outcomes{suffix} GROUP BY status")  # noqa: S608
        found = {
            "participants": count,
            "balances": int(balance or 0),
            "outcomes": {status: n for status, n in rows(c)},
        }
    return found


def _check_ok(check: dict[str, Any], work: Workload, records: int) -> bool:
    if records < work.events:
        return bool(check)  # capped: only that the store answered
    return (
        check.get("participants") == work.participants
        and check.get("balances") == work.balances
        and check.get("outcomes", {}).get("applied") == work.events
    )

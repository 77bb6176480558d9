"""How fast ``?as_of=`` answers for a participant with 10,000 commits, on both logs.

One participant (``hero``) gets N award commits (with a tier crossed on the way), each
followed on the log by a commit of another participant (so its records are not adjacent),
plus three tier definitions. The log is projected with the product's runner and store; then
the as-of answer is timed as the HTTP view computes it (positions from ``commit_outcomes``,
records read back by position, the projector's fold, the definitions folded to the moment,
``representations.profile``), at the end of the history and in its middle.

    .venv/bin/python -m bench.past [--commits 10000] [--repeat 5]

Kafka runs on the memory-only tansu broker of the test helpers (loopback).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from eventsourcing.persistence import StoredEvent

from bench.workload import produce
from projections import runner
from projections.db import open_database
from projections.participants.snapshots import SNAPSHOT_EVERY
from projections.participants.store import participant_store
from projections.past import PastQueries, definitions_as_of, participant_as_of
from projections.sources import LogSource
from projections.sources.sqlite import SqliteLogReader, SqliteLogSource
from schemas import codec
from schemas.events import (
    DEFINITION,
    Causation,
    Commit,
    DefinitionCreated,
    ParticipantRegistered,
    PointsAwarded,
    TierChanged,
)
from services.api.representations import profile
from services.participants.engine import Catalog

TOPIC = "gamify.participant-events"
TIERS = [("bronze", 1, 0), ("silver", 2, 5_000), ("gold", 3, 50_000)]


def moment(i: int) -> str:
    """The i-th second after 2026-01-01T00:00:00Z."""
    day, rest = divmod(i, 86_400)
    return f"2026-01-{day + 1:02d}T{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}Z"


def history(n: int) -> list[Commit]:
    """Definitions, then ``n`` awards of 10 to ``hero`` interleaved with ``n`` to others."""
    commits = [
        Commit(
            f"def-{code}",
            "acme",
            f"tier:{code}",
            0,
            moment(0),
            Causation("tier.create"),
            (
                DefinitionCreated(
                    "tier",
                    f"id-{code}",
                    code,
                    {"name": code, "level": level, "criteria_config": {"min_points": points}},
                ),
            ),
            DEFINITION,
        )
        for code, level, points in TIERS
    ]
    for i in range(n):
        for pid, version in (("hero", i), (f"other-{i}", 0)):
            events: list[Any] = [] if version else [ParticipantRegistered(auto_created=True)]
            balance = 10 * (version + 1)
            events.append(PointsAwarded(f"tx-{pid}-{i}", 10, balance))
            crossed = [t for t in TIERS if t[2] == balance or (version == 0 and t[2] == 0)]
            events += [TierChanged(c, c, lv) for c, lv, _ in crossed]
            commits.append(
                Commit(
                    f"c-{pid}-{i}",
                    "acme",
                    pid,
                    version,
                    moment(i + 1),
                    Causation(
                        "points.award",
                        input={"participant_id": pid, "amount": 10, "reason": None, "metadata": {}},
                    ),
                    tuple(events),
                )
            )
    return commits


async def project(source: LogSource, db: Any, until: dict[int, int]) -> None:
    store = participant_store(db)
    await asyncio.to_thread(store.create_table)
    await runner.run(source, store, asyncio.Event(), until=until, max_records=5_000)


async def timed(
    queries: PastQueries, reader: Any, at: str, repeat: int
) -> tuple[float, dict[str, Any]]:
    """Median seconds of one as-of profile at ``at``, and the profile."""
    spent: list[float] = []
    body: dict[str, Any] = {}
    for _ in range(repeat):
        began = time.perf_counter()
        row = await participant_as_of(queries, reader, "acme", "hero", at)
        assert row is not None
        found = await definitions_as_of(queries, reader, "acme", at)
        catalog = Catalog.of((d.kind, d.id, d.code, d.body) for d in found)
        body = profile(row, catalog, time_of(at))
        spent.append(time.perf_counter() - began)
    return statistics.median(spent), body


def time_of(at: str) -> Any:
    from services.validation import parse_timestamp

    return parse_timestamp(at)


async def measure(
    label: str,
    queries: PastQueries,
    reader: Any,
    n: int,
    repeat: int,
    report: Callable[[str], None],
) -> None:
    # Worst cases: just before a snapshot (SNAPSHOT_EVERY - 1 commits folded after the one
    # before it), and with no snapshot at all (a participant's first commits).
    for version in (n, n - 1, n // 2 - 1, SNAPSHOT_EVERY - 1):
        seconds, body = await timed(queries, reader, moment(version), repeat)
        assert body["points"]["balance"] == 10 * version, body["points"]
        report(
            f"{label}: as_of version {version} of {n} "
            f"({version % SNAPSHOT_EVERY} commits folded after a snapshot): "
            f"{seconds * 1000:.0f} ms (median of {repeat}); tier {body['tier']['code']}"
        )


async def embedded(n: int, repeat: int, report: Callable[[str], None]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log_path = str(Path(tmp) / "log.db")
        source = SqliteLogSource(log_path, TOPIC)
        stored = [StoredEvent(c.commit_id, 1, "gamify.commit", codec.encode(c)) for c in history(n)]
        for start in range(0, len(stored), 2_000):
            source.recorder.insert_events(stored[start : start + 2_000])
        db = open_database(f"sqlite:///{tmp}/read.db")
        await project(source, db, {0: len(stored)})
        reader = SqliteLogReader(log_path)
        await measure("embedded (SQLite log)", PastQueries(db), reader, n, repeat, report)
        reader.close()
        source.close()
        db.close()


async def kafka(n: int, repeat: int, report: Callable[[str], None]) -> None:
    from projections.sources.kafka import KafkaLogSource
    from projections.sources.kafka_reader import KafkaLogReader
    from tests.kafka_broker import start_tansu

    tansu = start_tansu()
    try:
        partitions = 3
        by_partition: dict[int, list[Any]] = {p: [] for p in range(partitions)}
        for c in history(n):  # everything in partition 0 keeps hero's records spread out
            by_partition[0].append((c.key, codec.encode(c), codec.headers(c)))
        ends = await produce(tansu.bootstrap, TOPIC, by_partition, partitions)
        with tempfile.TemporaryDirectory() as tmp:
            db = open_database(f"sqlite:///{tmp}/read.db")
            source = KafkaLogSource(tansu.bootstrap, TOPIC, group_id=None)
            await project(source, db, ends)
            reader = KafkaLogReader(tansu.bootstrap, TOPIC)
            try:
                await measure("Kafka (tansu)", PastQueries(db), reader, n, repeat, report)
            finally:
                await reader.stop()
                db.close()
    finally:
        tansu.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=["embedded", "kafka"])
    args = parser.parse_args()
    runs: list[Callable[[int, int, Callable[[str], None]], Awaitable[None]]] = []
    if args.only != "kafka":
        runs.append(embedded)
    if args.only != "embedded":
        runs.append(kafka)
    for run in runs:
        asyncio.run(run(args.commits, args.repeat, lambda line: print(line, flush=True)))


if __name__ == "__main__":
    main()

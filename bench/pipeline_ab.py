"""The runner pipelined (issue 11) against the old one-batch-at-a-time loop, without a broker.

The fast workload's records (``bench.apply_profile``) are served by an in-memory source, up to
``--batch`` records per partition per read, as aiokafka hands them out; ``runner.run`` (the
pipeline: ``pipelined``, or ``decode-ahead`` with ``decode_ahead=True``) and a copy of the loop
it replaced (``sequential``) project them into fresh stores, alternating, so the machine's load
shifts both alike. Prints records/s and the process CPU seconds per wall second
(above 1.0: more than one core was used).

    python -m bench.pipeline_ab                         # SQLite, 3 rounds
    python -m bench.pipeline_ab --kind postgres --events 30000 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.apply_profile import TOPIC, records_of
from bench.env import FAST, fresh_store
from projections import runner
from schemas.log import LogRecord
from tests.memory_source import MemorySource


async def sequential(source: MemorySource, store: Any, until: dict[int, int], batch: int) -> None:
    """The runner's loop before issue 11: read, apply every partition, read again."""
    positions: dict[int, int] = {}

    async def start_positions(partitions: Sequence[int]) -> dict[int, int]:
        found = await asyncio.to_thread(store.next_offsets, source.topic, list(partitions))
        positions.update(found)
        return found

    await source.start(start_positions)
    while any(positions.get(p, 0) < end for p, end in until.items()):
        got = await source.read(batch, 0.2)
        for partition, records in got.items():
            await asyncio.to_thread(store.apply_batch, source.topic, partition, records)
            positions[partition] = records[-1].offset + 1


def one(kind: str, mode: str, todo: dict[int, list[LogRecord]], batch: int) -> tuple[float, float]:
    """(records/s, CPU seconds per wall second) of one projection into a fresh store."""
    with fresh_store(kind, "gamify-pipeline-") as store:
        until = {p: len(found) for p, found in todo.items()}
        source = MemorySource(todo, TOPIC)
        cpu, wall = os.times(), time.perf_counter()
        if mode in ("pipelined", "decode-ahead"):
            ahead = mode == "decode-ahead"
            coro = runner.run(
                source, store, asyncio.Event(), until=until, max_records=batch, decode_ahead=ahead
            )
            asyncio.run(coro)
        else:
            asyncio.run(sequential(source, store, until, batch))
        seconds = time.perf_counter() - wall
        used = os.times()
        cpu_seconds = (used.user - cpu.user) + (used.system - cpu.system)
    return sum(until.values()) / seconds, cpu_seconds / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline_ab", description=__doc__)
    parser.add_argument("--kind", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--participants", type=int, default=FAST.participants)
    parser.add_argument("--events", type=int, default=FAST.events)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default="sequential,pipelined", help="also: decode-ahead")
    args = parser.parse_args(argv)
    todo = records_of(args.participants, args.events, FAST.partitions)
    results: dict[str, list[tuple[float, float]]] = {}
    modes = args.modes.split(",")
    for round_ in range(args.rounds):
        for mode in modes if round_ % 2 == 0 else modes[::-1]:
            rate, cores = one(args.kind, mode, todo, args.batch)
            load = os.getloadavg()[0]
            print(f"round {round_ + 1} {mode:>10}: {rate:,.0f} records/s, "
                  f"{cores:.2f} CPU s per s (load {load:.1f})", flush=True)  # fmt: skip
            results.setdefault(mode, []).append((rate, cores))
    for mode, found in results.items():
        rate = statistics.median(r for r, _ in found)
        cores = statistics.median(c for _, c in found)
        print(f"median {mode:>10}: {rate:,.0f} records/s, {cores:.2f} CPU s per s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Where projection time goes: the fast workload applied straight to a store, optionally profiled.

No broker: the records of ``make bench-fast``'s workload (same builder, same cache) are handed to
``store.apply_batch`` in batches of 1,000 per partition, as the runner does, so the figure is
the store's cost alone and far less noisy than the Kafka run.

    python -m bench.apply_profile                    # SQLite, events/s
    python -m bench.apply_profile --kind postgres    # PostgreSQL (the tests' server)
    python -m bench.apply_profile --profile 25       # cProfile, top 25 by own time
    python -m bench.apply_profile --decode-only      # schemas.codec.decode of every record
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time

from bench.env import FAST, fresh_store
from bench.workload import cached_build
from schemas.codec import decode
from schemas.log import LogRecord

TOPIC = "bench.participant-events"


def records_of(participants: int, events: int, partitions: int) -> dict[int, list[LogRecord]]:
    by_partition, _, _ = cached_build(participants, events // participants, partitions, cache=True)
    return {
        p: [LogRecord(p, i, value) for i, (_, value, _) in enumerate(found)]
        for p, found in by_partition.items()
    }


def apply_all(kind: str, todo: dict[int, list[LogRecord]], batch: int) -> tuple[int, float]:
    """Apply every record into a fresh store; (records, seconds)."""
    with fresh_store(kind, "gamify-apply-") as store:
        done = 0
        started = time.perf_counter()
        cpu = time.process_time()
        longest = max(len(r) for r in todo.values())
        for start in range(0, longest, batch):  # partitions in turn, as the runner gets them
            for partition, found in todo.items():
                chunk = found[start : start + batch]
                if chunk:
                    store.apply_batch(TOPIC, partition, chunk)
                    done += len(chunk)
        seconds = time.perf_counter() - started
        print(f"process CPU {time.process_time() - cpu:.2f}s "
              f"({1e6 * (time.process_time() - cpu) / max(done, 1):.1f} us per record)")  # fmt: skip
    return done, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.apply_profile", description=__doc__)
    parser.add_argument("--kind", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--participants", type=int, default=FAST.participants)
    parser.add_argument("--events", type=int, default=FAST.events)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--profile", type=int, metavar="N", help="print the top N functions")
    parser.add_argument("--decode-only", action="store_true")
    args = parser.parse_args(argv)
    todo = records_of(args.participants, args.events, FAST.partitions)
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    if args.decode_only:
        started = time.perf_counter()
        done = 0
        for found in todo.values():
            for record in found:
                decode(record.value)
                done += 1
        seconds = time.perf_counter() - started
    else:
        done, seconds = apply_all(args.kind, todo, args.batch)
    if profiler:
        profiler.disable()
    what = "decode" if args.decode_only else args.kind
    print(f"{what}: {done:,} records in {seconds:.2f}s = {done / seconds:,.0f}/s "
          f"({1e6 * seconds / done:.1f} us per record)")  # fmt: skip
    if profiler:
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(args.profile)
        stats.sort_stats("cumulative").print_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())

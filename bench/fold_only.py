"""The participant fold alone: CPU per commit of the participant stream, without decode or SQL.

The fast workload (``bench.apply_profile``'s records, decoded once up front) is folded batch by
batch through the registered participant stream (``load``, ``apply`` per commit, ``flush``) as
the store does, with the "database" a dict of the participants table's columns that each
flush updates, and the flush hooks of the store skipped. Run it in two checkouts to compare
two versions of the fold (A/B alternating):

    python -m bench.fold_only                 # SQLite-free, 100k commits, batches of 5,000
    python -m bench.fold_only --profile 25    # cProfile, top 25 by own time
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import sys
import time
from typing import Any

import projections.participants.store  # noqa: F401 - registers the streams and features
from bench.apply_profile import records_of
from bench.env import FAST
from projections.streams import STREAMS
from schemas.codec import decode
from schemas.events import PARTICIPANT, Commit


def fold_all(commits: list[Commit], batch: int) -> tuple[int, int]:
    """Fold every commit; (commits applied, writes made)."""
    table: dict[tuple[str, str], tuple[Any, ...]] = {}

    def select_in(head: str, keys: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [table[k] for k in keys if k in table]

    applied = writes = 0
    for start in range(0, len(commits), batch):
        chunk = commits[start : start + batch]
        stream = STREAMS[PARTICIPANT]()
        stream.load(select_in, chunk)
        for commit in chunk:
            status, found = stream.apply(commit, key_used=False)
            applied += status == "applied"
            writes += len(found)
        for write in stream.flush():
            table[(write.params[0], write.params[1])] = write.params
    return applied, writes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fold_only", description=__doc__)
    parser.add_argument("--participants", type=int, default=FAST.participants)
    parser.add_argument("--events", type=int, default=FAST.events)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--profile", type=int, metavar="N", help="print the top N functions")
    args = parser.parse_args(argv)
    todo = records_of(args.participants, args.events, FAST.partitions)
    commits = [decode(r.value) for found in todo.values() for r in found]
    del todo
    gc.collect()
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    cpu = time.process_time()
    applied, writes = fold_all(commits, args.batch)
    cpu = time.process_time() - cpu
    if profiler:
        profiler.disable()
    print(f"fold: {applied:,} of {len(commits):,} commits applied, {writes:,} writes; "
          f"CPU {cpu:.2f}s ({1e6 * cpu / len(commits):.2f} us per commit)")  # fmt: skip
    if profiler:
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())

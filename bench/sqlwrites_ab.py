"""Before/after of the store's SQLite writes, with where the database time goes (issue 11).

Applies the fast workload (``bench.apply_profile``'s records, decoded ahead with
``store.prepare`` so decoding is not counted) to a fresh store in batches of ``--batch`` per
partition, once per variant, the variants alternating in separate processes (A B A B ...), and
prints per record: process CPU (user + system), wall time, and the thread CPU of each SQL
statement of the batch (``_Batch._write``, ``_Batch._select_in``) and of the COMMIT.

    python -m bench.sqlwrites_ab                      # old vs new, 2 rounds
    python -m bench.sqlwrites_ab --random-ids         # commit ids as the product makes them
    python -m bench.sqlwrites_ab --variants new --rounds 1

Variants: ``old`` writes through the pool's connections (SQLite's default 2 MiB page cache, a
connection handed out in turn), as before ``Database._derived_connection``; ``new`` is the code
as it stands; ``cache`` is ``new`` with only the first of ``DERIVED_PRAGMAS`` (the page cache,
SQLite's default checkpoint interval). ``--random-ids``: the workload's commit ids are sequential (``<salt>-<round>-<i>``),
so commit-id index inserts append; the product's are uuid4 strings, which land at random
places in that index. This option gives every commit a random uuid4 id and shuffles the
participants within each round (a participant's commits keep their order).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import random
import resource
import subprocess
import sys
import time
import uuid
from typing import Any

from bench.apply_profile import TOPIC, records_of
from bench.env import FAST, fresh_store
from schemas.codec import decode, encode
from schemas.log import LogRecord


def randomised(todo: dict[int, list[LogRecord]], seed: int = 11) -> dict[int, list[LogRecord]]:
    """``todo`` with uuid4 commit ids and participants shuffled within each round."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible workload
    out: dict[int, list[LogRecord]] = {}
    for partition, found in todo.items():
        rounds: dict[int, list[Any]] = collections.defaultdict(list)
        for record in found:
            commit = decode(record.value)
            cid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            rounds[commit.expected_version].append(dataclasses.replace(commit, commit_id=cid))
        commits = []
        for version in sorted(rounds):
            rng.shuffle(rounds[version])
            commits.extend(rounds[version])
        out[partition] = [LogRecord(partition, i, encode(c)) for i, c in enumerate(commits)]
    return out


def measure(variant: str, batch: int, random_ids: bool) -> dict[str, Any]:
    """Apply the workload with ``variant``; CPU and per-statement thread CPU per record."""
    import eventsourcing.sqlite as es_sqlite

    import projections.participants.store as store_module

    spent: collections.Counter[str] = collections.Counter()
    write, select_in = store_module._Batch._write, store_module._Batch._select_in  # noqa: SLF001
    commit = es_sqlite.SQLiteConnection.commit

    def timed_write(self: Any, statement: str, params: list[Any]) -> None:
        started = time.thread_time()
        write(self, statement, params)
        spent[statement] += time.thread_time() - started

    def timed_select(self: Any, head: str, keys: list[Any]) -> list[Any]:
        started = time.thread_time()
        found = select_in(self, head, keys)
        table = head.split(" FROM ")[1].split()[0].strip("{}")
        spent[f"select {table}"] += time.thread_time() - started
        return found

    def timed_commit(self: Any) -> None:
        started = time.thread_time()
        commit(self)
        spent["COMMIT"] += time.thread_time() - started

    store_module._Batch._write = timed_write  # type: ignore[method-assign]  # noqa: SLF001
    store_module._Batch._select_in = timed_select  # type: ignore[method-assign]  # noqa: SLF001
    es_sqlite.SQLiteConnection.commit = timed_commit  # type: ignore[method-assign]

    todo = records_of(FAST.participants, FAST.events, FAST.partitions)
    if random_ids:
        todo = randomised(todo)
    if variant == "cache":
        import projections.db

        projections.db.DERIVED_PRAGMAS = projections.db.DERIVED_PRAGMAS[:1]
    with fresh_store("sqlite", "gamify-sqlwrites-") as store:
        if variant == "old":
            store.db._derived_lock.acquire()  # noqa: SLF001 - derived batches use the pool
        ready = {p: store.prepare(found) for p, found in todo.items()}
        done, longest = 0, max(len(r) for r in ready.values())
        before = resource.getrusage(resource.RUSAGE_SELF)
        started, cpu = time.perf_counter(), time.process_time()
        for start in range(0, longest, batch):
            for partition, found in ready.items():
                chunk = found[start : start + batch]
                if chunk:
                    store.apply_batch(TOPIC, partition, chunk)
                    done += len(chunk)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        size = os.path.getsize(store.db.path)
        if variant == "old":
            store.db._derived_lock.release()  # noqa: SLF001
    per = 1e6 / done
    return {
        "variant": variant,
        "records": done,
        "cpu_us": cpu * per,
        "user_us": (after.ru_utime - before.ru_utime) * per,
        "sys_us": (after.ru_stime - before.ru_stime) * per,
        "wall_us": wall * per,
        "db_mb": size / 1e6,
        "sql_us": {k: v * per for k, v in spent.most_common()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sqlwrites_ab", description=__doc__)
    parser.add_argument("--variants", default="old,new")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--random-ids", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args.batch, args.random_ids)))
        return 0
    for _ in range(args.rounds):
        for variant in args.variants.split(","):
            command = [sys.executable, "-m", "bench.sqlwrites_ab", "--child", variant]
            command += ["--batch", str(args.batch)] + (["--random-ids"] * args.random_ids)
            ran = subprocess.run(command, check=True, capture_output=True, text=True)  # noqa: S603
            found = json.loads(ran.stdout.splitlines()[-1])
            sql = sum(found["sql_us"].values())
            print(
                f"{variant:4s} CPU {found['cpu_us']:6.1f} us/record (user {found['user_us']:.1f}, "
                f"sys {found['sys_us']:.1f}), wall {found['wall_us']:.1f}, SQL {sql:.1f}: "
                + ", ".join(f"{k} {v:.1f}" for k, v in found["sql_us"].items())
                + f"; {found['db_mb']:.1f} MB, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One of several projector processes of ``bench.projection.project(projectors=N)``.

Projects the partitions it is given (``KafkaLogSource(only_partitions=...)``) into the shared
PostgreSQL store with the product's runner and store, then prints one JSON line: records,
batches, and the wall-clock times (``time.time()``) it started projecting and finished.

    python -m bench.projector_worker URL BOOTSTRAP TOPIC 0:1000,3:980 CAP_SECONDS
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from projections import runner
from projections.db import open_database
from projections.participants.store import participant_store
from projections.sources.kafka import KafkaLogSource


async def work(url: str, bootstrap: str, topic: str, ends: dict[int, int], cap: float) -> None:
    db = open_database(url)
    try:
        store = participant_store(db)
        source = KafkaLogSource(
            bootstrap,
            topic,
            group_id=None,
            client_id="bench-projector-worker",
            only_partitions=sorted(ends),
        )
        stop = asyncio.Event()
        stopper = asyncio.get_running_loop().call_later(cap, stop.set)
        started = time.time()
        try:
            stats = await runner.run(source, store, stop, until=ends)
        finally:
            stopper.cancel()
        finished = time.time()
    finally:
        db.close()
    line = {"records": stats.records, "batches": stats.batches}
    print(json.dumps(line | {"started": started, "finished": finished}), flush=True)


def main(argv: list[str]) -> int:
    url, bootstrap, topic, spec, cap = argv
    ends = {int(p): int(n) for p, n in (item.split(":") for item in spec.split(","))}
    asyncio.run(work(url, bootstrap, topic, ends, float(cap)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

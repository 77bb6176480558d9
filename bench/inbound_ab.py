"""Inbound waves in one process, without Kafka: the CPU an award costs the processor + projector.

The real app (SQLite store, its projector, the sealing log) over an in-memory log that takes
``append_many``; the processor's partition path (``InboundProcessor._process``) gets consumed
batches built here: ``rounds`` awards for each of ``participants`` new participants, round
after round, ``batch`` records at a time, as the inbound benchmark publishes them. Reported:
process CPU (all threads) and wall time per command. Run it from two trees for an A/B
(``cd <tree> && python -m bench.inbound_ab``); ``--profile FILE`` writes a cProfile of the run.

    python -m bench.inbound_ab [--participants 2000] [--rounds 5] [--batch 2000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.structs import ConsumerRecord

from schemas.events import Commit
from schemas.log import LogPosition
from services.adapters.memory_event_log import InMemoryEventLog
from services.api.app import create_app
from services.api.keys import deps_key
from services.config import Settings, parse_api_keys
from services.inbound.processor import InboundProcessor, InboundTopics

TOPIC = "bench.inbound"
TENANT = "bench"


class ManyLog(InMemoryEventLog):
    async def append_many(self, commits: Sequence[Commit]) -> list[LogPosition]:
        return [await self.append(c) for c in commits]


class Processor(InboundProcessor):
    letters = 0

    async def dead_letter(self, record: ConsumerRecord, kind: str, reason: str) -> None:
        self.letters += 1


def records(participants: int, rounds: int, prefix: str) -> list[ConsumerRecord]:
    found = []
    for r in range(rounds):
        for i in range(participants):
            value = orjson.dumps(
                {"command": "points.award", "tenant": TENANT, "participant_id": f"{prefix}{i:06d}",
                 "amount": 3, "reason": "inbound bench", "idempotency_key": f"{prefix}-{i}-{r}"}
            )  # fmt: skip
            found.append(
                ConsumerRecord(TOPIC, 0, len(found), 0, 0, b"k", value, None, 1, len(value), [])
            )
    return found


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="gamify-inbound-ab-") as tmp:
        settings = Settings(api_keys=parse_api_keys(f"{TENANT}:k-bench"), data_dir=Path(tmp))
        log = ManyLog()
        async with TestClient(TestServer(create_app(settings, event_log=log))) as client:
            processor = Processor(
                client.app[deps_key], "127.0.0.1:9", InboundTopics(TOPIC, f"{TOPIC}-dlq"),
                {TENANT}, group_id="bench.inbound",
            )  # fmt: skip
            try:
                for n in range(args.repeat):
                    todo = records(args.participants, args.rounds, f"r{n}_")
                    profile = cProfile.Profile() if args.profile and n == args.repeat - 1 else None
                    wall, cpu = time.perf_counter(), time.process_time()
                    if profile is not None:
                        profile.enable()
                    for start in range(0, len(todo), args.batch):
                        await processor._process(todo[start : start + args.batch])  # noqa: SLF001
                    if profile is not None:
                        profile.disable()
                        profile.dump_stats(args.profile)
                    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                    results.append(
                        {"commands": len(todo), "cpu_us_per_command": cpu / len(todo) * 1e6,
                         "wall_us_per_command": wall / len(todo) * 1e6,
                         "dead_letters": processor.letters, "log_records": len(log.values)}
                    )  # fmt: skip
                    print(json.dumps({k: round(v, 1) for k, v in results[-1].items()}), flush=True)
            finally:
                await processor.consumer.stop()
                await processor.producer.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inbound_ab", description=__doc__)
    parser.add_argument("--participants", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=2000, help="records per consumed batch")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", metavar="FILE", help="cProfile the last repeat into FILE")
    results = asyncio.run(run(parser.parse_args()))
    cpu = sorted(r["cpu_us_per_command"] for r in results)
    print(f"median CPU {cpu[len(cpu) // 2]:.0f} us per command (min {cpu[0]:.0f})")


if __name__ == "__main__":
    main()

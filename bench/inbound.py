"""Inbound commands/s: award commands on ``<prefix>inbound`` until the balances show all of them."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from bench.env import FAST, TENANT, GamifyServer, kafka_env

AMOUNT = 3
PREFIX = "inb_"


async def inbound(
    bootstrap: str, topic: str, store: Path, commands: int, participants: int, cap: float
) -> dict[str, Any]:
    """Publish ``commands`` awards over ``participants`` new participants; time until projected.

    The clock starts before the first message is published and stops when the read model (the
    service's SQLite store, read by this process) holds every participant with every point.
    """
    rounds = max(1, commands // participants)
    messages = [
        (
            f"{PREFIX}{i:06d}".encode(),
            orjson.dumps(
                {
                    "command": "points.award",
                    "tenant": TENANT,
                    "participant_id": f"{PREFIX}{i:06d}",
                    "amount": AMOUNT,
                    "reason": "inbound bench",
                    "idempotency_key": f"inb-{i}-{r}",
                }
            ),
        )
        for r in range(rounds)
        for i in range(participants)
    ]
    expected = (participants, len(messages) * AMOUNT)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, client_id="bench-inbound", acks="all",
        enable_idempotence=False, linger_ms=5,
    )  # fmt: skip
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for key, value in messages:
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    published = time.perf_counter() - started
    found = (0, 0)
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=30)
    try:
        while time.perf_counter() - started < cap:
            found = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(balance), 0) FROM participants "
                "WHERE tenant = ? AND participant_id >= ? AND participant_id < ?",
                (TENANT, PREFIX, PREFIX[:-1] + chr(ord(PREFIX[-1]) + 1)),
            ).fetchone()
            if tuple(found) == expected:
                break
            await asyncio.sleep(0.05)
    finally:
        db.close()
    seconds = time.perf_counter() - started
    done = tuple(found) == expected
    applied = found[1] // AMOUNT
    return {
        "commands": len(messages),
        "participants": participants,
        "publish_seconds": published,
        "seconds": seconds,
        "applied": applied,
        "complete": done,
        "rate": applied / seconds if seconds else 0.0,
        "capped_at_seconds": None if done else cap,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main_thread_sched(pid: int) -> tuple[float, float]:
    """(on-CPU, waiting-for-a-CPU) seconds of ``pid``'s main thread (/proc/<pid>/schedstat)."""
    on_cpu, waiting, _ = Path(f"/proc/{pid}/schedstat").read_text().split()
    return int(on_cpu) / 1e9, int(waiting) / 1e9


async def standalone(args: argparse.Namespace) -> dict[str, Any]:
    """A tansu broker and ``gamify serve`` on an empty SQLite store, then ``inbound``."""
    from tests.kafka_broker import start_tansu

    workdir = Path(tempfile.mkdtemp(prefix="gamify-inbound-"))
    tansu = start_tansu()
    server: GamifyServer | None = None
    spy: subprocess.Popen[bytes] | None = None
    try:
        prefix = f"inb{os.getpid()}."
        env = kafka_env(tansu.bootstrap, prefix, FAST.partitions)
        store = workdir / "gamify.db"
        env["GAMIFY_DATABASE_URL"] = f"sqlite:///{store}"
        env.update(e.split("=", 1) for e in args.env)
        server = GamifyServer("serve", env, workdir).start()
        await asyncio.to_thread(server.wait_ready, 120)
        if args.spy:
            spy = subprocess.Popen(  # noqa: S603 - py-spy from this venv
                [str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(server.pid),
                 "-o", args.spy, "-f", args.spy_format, "-r", "50", "--nonblocking", "--threads", *(["--gil"] if os.environ.get("SPY_GIL") else [])],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            await asyncio.sleep(1)
        cpu, sched = cpu_seconds(server.pid), main_thread_sched(server.pid)
        found = await inbound(
            tansu.bootstrap, f"{prefix}inbound", store, args.commands, args.participants, args.cap
        )
        used = cpu_seconds(server.pid) - cpu
        on_cpu, waiting = (b - a for a, b in zip(sched, main_thread_sched(server.pid), strict=True))
        found["main_thread"] = {"on_cpu": on_cpu, "runnable_waiting": waiting,
                                "blocked_or_idle": found["seconds"] - on_cpu - waiting}  # fmt: skip
        found["serve_cpu_seconds"] = used
        found["serve_cpu_us_per_command"] = used / max(1, found["applied"]) * 1e6
        found["loadavg"] = os.getloadavg()
        return found
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
        if server is not None:
            server.stop()
            if args.log:
                shutil.copy(server.log, args.log)
        tansu.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.inbound",
        description="inbound commands/s on a fresh broker and an empty store, with serve's CPU",
    )
    parser.add_argument("--commands", type=int, default=FAST.inbound_commands)
    parser.add_argument("--participants", type=int, default=FAST.inbound_participants)
    parser.add_argument("--cap", type=float, default=120.0)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="extra environment of serve (repeatable)")  # fmt: skip
    parser.add_argument("--spy", metavar="FILE", help="py-spy record serve into FILE")
    parser.add_argument("--spy-format", default="speedscope")
    parser.add_argument("--log", metavar="FILE", help="copy serve's log to FILE")
    found = asyncio.run(standalone(parser.parse_args()))
    print(json.dumps(_rounded(found)))


def _rounded(found: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in found.items()}


if __name__ == "__main__":
    main()

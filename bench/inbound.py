"""Inbound commands/s: award commands on ``<prefix>inbound`` until the balances show all of them."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from bench.env import TENANT

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

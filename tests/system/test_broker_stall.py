"""The broker stalls (SIGSTOP): a write answers 503 within the write timeout, produce included.

`gamify serve` on a tansu broker of its own. With the broker stopped, a write's produce cannot
be acknowledged: it must answer 503 with ``Retry-After`` within GAMIFY_WRITE_TIMEOUT_MS plus a
little (before: as long as the stall lasted), and /readyz must answer fast and name the log.
After SIGCONT the record the timed-out produce left behind may land: a retry with the same key
gives the write's result once.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from services.adapters.kafka_event_log import KafkaEventLog
from tests.kafka_broker import TansuBroker, start_tansu
from tests.system.faults import Answer, acall
from tests.system.support import eventually, kafka_env, new_prefix

WRITE_TIMEOUT_MS = 1500
SLACK = 1.0
PARTITIONS = 3


@pytest.fixture
def tansu() -> Iterator[TansuBroker]:
    broker = start_tansu()
    yield broker
    if broker.running:
        assert broker._process is not None
        os.kill(broker._process.pid, signal.SIGCONT)
    broker.stop()


async def test_a_write_answers_503_within_the_write_timeout_while_the_broker_is_stalled(
    tansu: TansuBroker, processes: Any, tmp_path: Any
) -> None:
    prefix = new_prefix()
    log = KafkaEventLog(
        tansu.bootstrap, f"{prefix}participant-events", partitions=PARTITIONS, idempotence=False
    )
    await log.start()  # creates the topic
    await log.stop()
    env = kafka_env(tansu, prefix, PARTITIONS)
    env.update(
        {
            "GAMIFY_API_KEYS": "acme:k-acme",
            "GAMIFY_WRITE_TIMEOUT_MS": str(WRITE_TIMEOUT_MS),
            "GAMIFY_DATABASE_URL": f"sqlite:///{tmp_path / 'read-models.db'}",
        }
    )
    server = processes("serve", env, "serve")
    await asyncio.to_thread(server.start)
    base = server.base_url

    async def award(key: str) -> Answer:
        return await acall(
            base, "POST", "/points/award", {"participant_id": "u", "amount": 1}, key=key
        )

    async def readyz() -> Answer:
        return await acall(base, "GET", "/readyz")

    assert (await award("before")).status == 200
    await eventually(readyz, lambda a: a.status == 200, timeout=20, what="ready")
    assert tansu._process is not None
    pid = tansu._process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        stalled = await award("stalled")
        print(f"write with the broker stopped: {stalled.status} in {stalled.seconds:.2f}s")
        assert stalled.status == 503, stalled
        assert stalled.headers.get("Retry-After") == "1"
        assert "same Idempotency-Key" in stalled.body["detail"]
        assert stalled.seconds < WRITE_TIMEOUT_MS / 1000 + SLACK, stalled.seconds
        answer = await eventually(
            readyz,
            lambda a: a.status == 503 and str(a.body["checks"]["log"]) != "ok",
            timeout=5,
            what="/readyz names the log",
            context=server.tail,
        )
        assert answer.seconds < 1.0, answer
        print(f"/readyz with the broker stopped: {answer.seconds * 1000:.0f} ms, {answer.body}")
    finally:
        os.kill(pid, signal.SIGCONT)
    await eventually(readyz, lambda a: a.status == 200, timeout=30, what="ready again")
    retried = await eventually(
        lambda: award("stalled"), lambda a: a.status == 200, timeout=15, what="the retry"
    )
    again = await award("stalled")
    assert again.status == 200 and again.headers.get("Idempotent-Replayed") == "true"
    assert retried.body["new_balance"] == again.body["new_balance"] == 2
    points = await acall(base, "GET", "/participants/u/points")
    assert points.body["balance"] == 2, points

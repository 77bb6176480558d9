"""Issue 10, fault 1, against a real `gamify serve` on PostgreSQL read models (embedded and Kafka).

A commit PostgreSQL cannot store (NUL in a text field) and bytes that are no commit are put
straight onto the log, below the HTTP boundary. Projection goes on: writes of every tenant
answer within the write timeout, `/readyz` and `/metrics` report the quarantine, `gamify
quarantine` lists it, acknowledging it makes the server ready again, and a restart changes
nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest
from aiokafka import AIOKafkaProducer
from eventsourcing.persistence import StoredEvent

from schemas.codec import encode
from services.adapters.sqlite_event_log import SqliteEventLog
from tests.builders import award_commit
from tests.e2e.conftest import GLOBEX_KEY, PROJECT_ROOT, Api, Server

WRITE_TIMEOUT_MS = 3000


@pytest.fixture(params=["embedded", "kafka"])
def pg_server(
    request: pytest.FixtureRequest,
    server_factory: Callable[[str], Server],
    postgres_schema_url: str,
) -> Iterator[Server]:
    srv = server_factory(request.param)
    srv.env["GAMIFY_DATABASE_URL"] = postgres_schema_url
    srv.env["GAMIFY_WRITE_TIMEOUT_MS"] = str(WRITE_TIMEOUT_MS)
    srv.env["GAMIFY_READY_FAIL_ON_QUARANTINE"] = "true"
    srv.start()
    yield srv
    srv.stop()


def poison_values() -> list[bytes]:
    nul = award_commit("p", 0, 1, 1, cid="nul-commit", tenant="acme")
    nul = dataclasses.replace(
        nul, events=(nul.events[0], dataclasses.replace(nul.events[1], reason="a\x00b"))
    )
    return [encode(nul), b"\x00\xff not a commit"]


async def put_on_log(server: Server, values: list[bytes]) -> None:
    """Append raw records the way a broken producer would, bypassing the API."""
    if server.mode == "embedded":
        log = SqliteEventLog(str(server.data_dir / "log.db"))
        try:
            for i, value in enumerate(values):
                stored = StoredEvent(f"raw-{i}", 1, "gamify.commit", value)
                await asyncio.to_thread(log.recorder.insert_events, [stored])
        finally:
            log.close()
        return
    producer = AIOKafkaProducer(bootstrap_servers=server.env["GAMIFY_KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    try:
        topic = f"{server.env['GAMIFY_KAFKA_TOPIC_PREFIX']}participant-events"
        for value in values:
            await producer.send_and_wait(topic, value, key=b"acme:p")
    finally:
        await producer.stop()


def gamify(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAMIFY_")}
    env.update(server.env)
    env["GAMIFY_DATA_DIR"] = str(server.data_dir)
    return subprocess.run(
        [sys.executable, "-m", "services", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def eventually(check: Callable[[], Awaitable[bool]], deadline: float = 15.0) -> None:
    end = time.monotonic() + deadline
    while not await check():
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.1)


async def timed_award(api: Api, pid: str, key: str | None = None) -> float:
    started = time.monotonic()
    kwargs = {} if key is None else {"key": key}
    reply = await api.post("/points/award", {"participant_id": pid, "amount": 3}, **kwargs)
    took = time.monotonic() - started
    assert reply.status == 200, reply
    return took


async def test_poison_on_the_log_stops_no_write_and_is_reported_and_listed(
    pg_server: Server, api_for: Callable[[Server], Api]
) -> None:
    api = api_for(pg_server)
    await timed_award(api, "before")
    await put_on_log(pg_server, poison_values())
    for pid, key in (("after-acme", None), ("after-globex", GLOBEX_KEY)):
        assert await timed_award(api, pid, key) < WRITE_TIMEOUT_MS / 1000

    async def readyz_names_the_quarantine() -> bool:
        reply = await api.session.get(f"{pg_server.base_url}/readyz")
        body = await reply.json()
        return reply.status == 503 and "2 record(s) quarantined" in body["checks"]["quarantine"]

    await eventually(readyz_names_the_quarantine)
    metrics = await (await api.session.get(f"{pg_server.base_url}/metrics")).text()
    assert 'gamify_projector_quarantined_records{projection="participants"} 2.0' in metrics

    listed = gamify(pg_server, "quarantine", "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 2 and "nul-commit" in lines[0] and "value" in lines[0]
    assert "decode" in lines[1]

    acked = gamify(pg_server, "quarantine", "ack", "--all")
    assert acked.returncode == 0, acked.stderr

    async def ready() -> bool:
        return (await api.session.get(f"{pg_server.base_url}/readyz")).status == 200

    await eventually(ready)
    pg_server.restart()
    api = api_for(pg_server)
    await eventually(ready)
    assert await timed_award(api, "after-restart") < WRITE_TIMEOUT_MS / 1000

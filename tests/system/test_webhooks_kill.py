"""Kill -9 the `gamify serve` process while it delivers webhooks; after a restart every event
reaches the receiver (nothing lost), and an event delivered twice carries the same id and body
(receivers deduplicate on ``id``): the documented at-least-once promise, on both logs (the
embedded one with SQLite read models, Kafka with PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from tests.system.support import GamifyProcess, kafka_env, new_prefix

API = "/api/v1/gamify"
ADMIN = {"X-API-Key": "key-admin"}
SECRET = "kill-test-secret-0123456789"
AWARDS = 30  # per phase; each to a new participant: participant.created + points.awarded


class Receiver:
    """Answers slowly, so deliveries are still pending when the process is killed."""

    def __init__(self) -> None:
        self.got: dict[str, list[bytes]] = defaultdict(list)
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        await asyncio.sleep(0.03)
        self.got[orjson.loads(body)["id"]].append(body)
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]
    yield found
    await runner.cleanup()


async def eventually(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def award_all(session: aiohttp.ClientSession, base: str, names: list[str]) -> None:
    for name in names:
        async with session.post(
            f"{base}{API}/points/award",
            json={"participant_id": name, "amount": 5},
            headers={"X-API-Key": "key-acme", "Idempotency-Key": f"award-{name}"},
        ) as reply:
            assert reply.status in (200, 201), await reply.text()


@pytest.mark.parametrize("log", ["embedded", "kafka"])
async def test_a_killed_dispatcher_loses_nothing_and_resends_with_the_same_ids(
    log: str, processes: Any, receiver: Receiver, request: pytest.FixtureRequest
) -> None:
    env = {
        "GAMIFY_API_KEYS": "acme:key-acme,acme:key-admin:admin",
        "GAMIFY_WEBHOOKS_ALLOW_PRIVATE": "true",
        "GAMIFY_WEBHOOKS_BACKOFF_MS": "100",
        "GAMIFY_WEBHOOKS_CONCURRENCY": "2",
        "GAMIFY_LOG_LEVEL": "WARNING",
    }
    if log == "kafka":  # and the read models (and the outbox) in PostgreSQL
        env.update(kafka_env(request.getfixturevalue("kafka_broker"), new_prefix(), 3))
        env["GAMIFY_DATABASE_URL"] = request.getfixturevalue("postgres_schema_url")
    serve: GamifyProcess = processes("serve", env, "serve")
    await asyncio.to_thread(serve.start)
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{serve.base_url}{API}/admin/webhooks",
            json={"url": receiver.url, "events": ["*"], "secret": SECRET},
            headers=ADMIN,
        ) as reply:
            assert reply.status == 201, await reply.text()
        await award_all(session, serve.base_url, [f"a{n}" for n in range(AWARDS)])
        await eventually(lambda: len(receiver.got) >= 5, 30, "no delivery before the kill")
        assert len(receiver.got) < 2 * AWARDS, "everything was delivered before the kill"
        await asyncio.to_thread(serve.kill)
        before = {k: list(v) for k, v in receiver.got.items()}
        await asyncio.to_thread(serve.start)
        await award_all(session, serve.base_url, [f"b{n}" for n in range(AWARDS)])
        await eventually(
            lambda: len(receiver.got) == 4 * AWARDS, 60, f"{len(receiver.got)} of {4 * AWARDS}"
        )
    bodies = [orjson.loads(b) for copies in receiver.got.values() for b in copies]
    assert all(len(set(copies)) == 1 for copies in receiver.got.values()), "same id, other body"
    awarded = {b["data"]["participant_id"] for b in bodies if b["type"] == "points.awarded"}
    assert awarded == {f"{p}{n}" for p in "ab" for n in range(AWARDS)}
    assert all(receiver.got[k][0] == v[0] for k, v in before.items())

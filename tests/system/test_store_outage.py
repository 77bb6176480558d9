"""PostgreSQL goes away mid-run: writes answer 503 with Retry-After, /readyz names the store fast.

`gamify serve` (embedded log) keeps its read models in PostgreSQL behind a proxy the test
controls (the machine's PostgreSQL is shared: it is never stopped). With the proxy cut, every
write answers 503 with ``Retry-After`` within the write timeout, never 500, and /readyz answers
within a second, not ready, naming the store. Once the proxy is back, retrying each write with
its Idempotency-Key gives its result once: nothing lost, nothing doubled. The cut comes while
writers are busy, so some writes are caught after their append; a stalled store (the proxy
holding every byte) is answered 503 within the write timeout too.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

from tests.system.faults import Answer, CuttableProxy, acall
from tests.system.support import eventually

WRITE_TIMEOUT_MS = 1500
SLACK = 1.0  # seconds beyond the write timeout an answer may take on a loaded machine
WRITES = 4
WRITERS = 3


async def test_writes_answer_503_while_the_store_is_unreachable_and_lose_nothing(
    processes: Any, postgres_schema_url: str
) -> None:
    url = urlsplit(postgres_schema_url)
    proxy = await CuttableProxy(url.hostname or "127.0.0.1", url.port or 5432).start()
    server = processes(
        "serve",
        {
            "GAMIFY_API_KEYS": "acme:k-acme",
            "GAMIFY_DATABASE_URL": url._replace(
                netloc=f"{url.username}@127.0.0.1:{proxy.port}"
            ).geturl(),
            "GAMIFY_WRITE_TIMEOUT_MS": str(WRITE_TIMEOUT_MS),
        },
        "serve",
    )
    await asyncio.to_thread(server.start)
    base = server.base_url

    async def award(key: str) -> Answer:
        return await acall(
            base, "POST", "/points/award", {"participant_id": "u", "amount": 1}, key=key
        )

    async def readyz() -> Answer:
        return await acall(base, "GET", "/readyz")

    sent: dict[str, Answer] = {}

    async def writer(n: int, stop: asyncio.Event) -> None:
        i = 0
        while not stop.is_set():
            key = f"load-{n}-{i}"
            sent[key] = await award(key)
            i += 1

    try:
        assert (await award("before")).status == 200
        assert (await readyz()).status == 200

        stop = asyncio.Event()
        busy = [asyncio.create_task(writer(n, stop)) for n in range(WRITERS)]
        await asyncio.sleep(0.5)
        proxy.cut()
        answer = await eventually(
            readyz,
            lambda a: a.status == 503 and str(a.body["checks"]["store"]).startswith("unreachable"),
            timeout=3,
            interval=0.1,
            what="/readyz names the store",
            context=server.tail,
        )
        assert answer.seconds < 1.0, answer
        print(f"/readyz with the store cut: {answer.seconds * 1000:.0f} ms, {answer.body}")
        stop.set()
        await asyncio.gather(*busy)
        statuses = Counter(a.status for a in sent.values())
        print(f"writes under load around the cut: {dict(statuses)}")
        assert set(statuses) <= {200, 503}, {k: a for k, a in sent.items() if a.status >= 500}

        during = [await award(f"during-{i}") for i in range(WRITES)]
        for a in during:
            assert a.status == 503, a
            assert a.headers.get("Retry-After") == "1", a.headers
            assert a.seconds < WRITE_TIMEOUT_MS / 1000 + SLACK, a.seconds
        print("writes with the store cut:", [(a.status, round(a.seconds, 2)) for a in during])
        print("their details:", sorted({a.body["detail"] for a in during}))
        for _ in range(3):
            assert (await readyz()).seconds < 1.0

        proxy.restore()
        await eventually(readyz, lambda a: a.status == 200, timeout=30, what="ready after the cut")
        proxy.pause()
        stalled = await award("stalled")
        assert stalled.status == 503 and stalled.headers.get("Retry-After") == "1", stalled
        assert stalled.seconds < WRITE_TIMEOUT_MS / 1000 + SLACK, stalled.seconds
        slow_ready = await readyz()
        assert slow_ready.status == 503 and slow_ready.seconds < 1.0, slow_ready
        print(
            f"stalled store: write {stalled.status} in {stalled.seconds:.2f}s "
            f"({stalled.body['detail']}); /readyz {slow_ready.seconds * 1000:.0f} ms "
            f"{slow_ready.body['checks']['store']}"
        )
        proxy.resume()
        await eventually(
            readyz, lambda a: a.status == 200, timeout=30, what="ready again", context=server.tail
        )
        retried = [await award(f"during-{i}") for i in range(WRITES)]
        assert [a.status for a in retried] == [200] * WRITES, retried
        again = [await award(f"during-{i}") for i in range(WRITES)]
        assert all(a.headers.get("Idempotent-Replayed") == "true" for a in again), again
        for key in [*sent, "stalled"]:
            assert (await award(key)).status == 200, key
        points = await acall(base, "GET", "/participants/u/points")
        assert points.body["balance"] == 1 + WRITES + len(sent) + 1, points
    finally:
        await proxy.stop()

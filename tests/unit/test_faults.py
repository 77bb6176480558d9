"""Honest answers under faults: the 503 rule and the write timeout, over an in-memory log."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from eventsourcing.persistence import OperationalError

from schemas.events import Commit
from schemas.log import LogPosition
from services.adapters.memory_event_log import InMemoryEventLog
from services.api.app import create_app
from services.api.keys import deps_key, queries_key
from services.config import Settings, parse_api_keys

BASE = "/api/v1/gamify"
ACME = {"X-API-Key": "k-acme", "Idempotency-Key": "order-1"}
AWARD = {"participant_id": "u1", "amount": 5}
WRITE_TIMEOUT = 0.5


class FaultyLog(InMemoryEventLog):
    """An in-memory log whose appends can be made to fail or hang, before or after storing."""

    def __init__(self) -> None:
        super().__init__()
        self.fault: Callable[[], Any] | None = None
        self.store_first = True

    async def append(self, commit: Commit) -> LogPosition:
        fault = self.fault
        if fault is None:
            return await super().append(commit)
        if self.store_first:
            await super().append(commit)  # the record lands, then the answer is lost
        result = fault()
        if asyncio.iscoroutine(result):
            await result
        raise AssertionError("the fault did not raise")


@pytest.fixture
def log() -> FaultyLog:
    return FaultyLog()


@pytest.fixture
async def client(tmp_path: Path, log: FaultyLog) -> AsyncIterator[TestClient]:
    settings = Settings(
        api_keys=parse_api_keys("acme:k-acme"), data_dir=tmp_path, write_timeout=WRITE_TIMEOUT
    )
    app = create_app(settings, event_log=log)
    async with TestClient(TestServer(app)) as c:
        yield c


def _raise(exc: BaseException) -> Callable[[], None]:
    def fail() -> None:
        raise exc

    return fail


async def _balance(client: TestClient) -> int:
    resp = await client.get(f"{BASE}/participants/u1/points", headers=ACME)
    return int((await resp.json())["balance"]) if resp.status == 200 else 0


@pytest.mark.parametrize(
    "exc",
    [
        TimeoutError("produce timed out"),
        ConnectionResetError("broker went away"),
        RuntimeError("a bug after the append"),
        OperationalError("server closed the connection unexpectedly"),
    ],
    ids=["timeout", "connection", "bug", "store"],
)
async def test_a_failure_after_the_append_is_503_with_retry_after_and_the_retry_applies_once(
    client: TestClient, log: FaultyLog, exc: BaseException
) -> None:
    log.fault = _raise(exc)
    resp = await client.post(f"{BASE}/points/award", headers=ACME, json=AWARD)
    assert resp.status == 503, await resp.text()
    assert resp.headers["Retry-After"] == "1"
    assert "retry with the same Idempotency-Key" in (await resp.json())["detail"]
    log.fault = None
    retry = await client.post(f"{BASE}/points/award", headers=ACME, json=AWARD)
    assert retry.status == 200
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert await _balance(client) == 5


async def test_a_hanging_append_is_answered_503_within_the_write_timeout(
    client: TestClient, log: FaultyLog
) -> None:
    log.fault, log.store_first = lambda: asyncio.sleep(30), False
    started = time.monotonic()
    resp = await client.post(f"{BASE}/points/award", headers=ACME, json=AWARD)
    took = time.monotonic() - started
    assert resp.status == 503 and resp.headers["Retry-After"] == "1"
    assert "retry with the same Idempotency-Key" in (await resp.json())["detail"]
    assert took < WRITE_TIMEOUT + 0.3, took
    log.fault = None
    retry = await client.post(f"{BASE}/points/award", headers=ACME, json=AWARD)
    assert retry.status == 200 and await _balance(client) == 5


async def test_a_store_that_fails_before_the_append_is_503_and_nothing_is_written(
    client: TestClient, log: FaultyLog
) -> None:
    reader = client.app[deps_key].reader

    async def down(*args: object, **kwargs: object) -> None:
        raise OperationalError("connection refused") from sqlite3.OperationalError("x")

    original = reader.get_state
    reader.get_state = down  # type: ignore[method-assign]
    resp = await client.post(f"{BASE}/points/award", headers=ACME, json=AWARD)
    assert resp.status == 503 and resp.headers["Retry-After"] == "1"
    assert "nothing was recorded" in (await resp.json())["detail"]
    assert log.values == []
    reader.get_state = original  # type: ignore[method-assign]
    assert (await client.post(f"{BASE}/points/award", headers=ACME, json=AWARD)).status == 200


async def test_a_store_that_hangs_before_the_append_is_503_within_the_write_timeout(
    client: TestClient, log: FaultyLog
) -> None:
    reader = client.app[deps_key].reader

    async def hang(*args: object, **kwargs: object) -> None:
        await asyncio.sleep(30)

    reader.get_catalog = hang  # type: ignore[method-assign]
    started = time.monotonic()
    resp = await client.post(f"{BASE}/points/award", headers=ACME, json=AWARD)
    assert resp.status == 503 and "nothing was recorded" in (await resp.json())["detail"]
    assert time.monotonic() - started < WRITE_TIMEOUT + 0.3
    assert log.values == []


async def test_a_programming_error_before_any_append_is_still_500(
    client: TestClient, log: FaultyLog
) -> None:
    reader = client.app[deps_key].reader

    async def bug(*args: object, **kwargs: object) -> None:
        raise KeyError("a bug")

    reader.get_state = bug  # type: ignore[method-assign]
    resp = await client.post(f"{BASE}/points/award", headers=ACME, json=AWARD)
    assert resp.status == 500
    assert log.values == []


async def test_readyz_answers_fast_and_names_a_store_that_hangs(
    client: TestClient, log: FaultyLog
) -> None:
    queries = client.app[queries_key]

    def hang() -> None:
        time.sleep(3)

    queries.ping = hang  # type: ignore[method-assign]
    started = time.monotonic()
    resp = await client.get("/readyz")
    body = await resp.json()
    assert time.monotonic() - started < 1.0
    assert resp.status == 503 and body["checks"]["store"].startswith("unreachable"), body


async def test_readyz_says_not_ready_after_a_write_failed_on_an_unusable_store(
    client: TestClient, log: FaultyLog
) -> None:
    assert (await client.get("/readyz")).status == 200
    log.fault, log.store_first = _raise(sqlite3.OperationalError("database or disk is full")), False
    assert (await client.post(f"{BASE}/points/award", headers=ACME, json=AWARD)).status == 503
    body = await (await client.get("/readyz")).json()
    assert body["checks"]["writes"] == "failing: OperationalError: database or disk is full"
    log.fault = None
    assert (await client.post(f"{BASE}/points/award", headers=ACME, json=AWARD)).status == 200
    assert (await client.get("/readyz")).status == 200

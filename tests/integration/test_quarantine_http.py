"""Over HTTP: a poison record on the log stops no later write, and /readyz and /metrics say so."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from schemas.events import Commit, PointsAwarded
from schemas.log import LogPosition
from services.adapters.memory_event_log import InMemoryEventLog
from services.api.app import create_app
from services.config import Settings, parse_api_keys
from tests.builders import award_commit

BASE = "/api/v1/gamify"
ACME = {"X-API-Key": "k-acme"}
GLOBEX = {"X-API-Key": "k-globex"}
WRITE_TIMEOUT = 3.0


class PoisoningLog(InMemoryEventLog):
    """The in-memory log, which can slip a NUL into the reason of the next commit appended.

    Stands for any commit the API appends that the projector then cannot apply (the HTTP
    boundary refuses NUL itself, so the poison is made below it).
    """

    poison_next = False

    async def append(self, commit: Commit) -> LogPosition:
        if self.poison_next:
            self.poison_next = False
            commit = dataclasses.replace(
                commit,
                events=tuple(
                    dataclasses.replace(e, reason="a\x00b") if isinstance(e, PointsAwarded) else e
                    for e in commit.events
                ),
            )
        return await super().append(commit)


@pytest.fixture
def log() -> PoisoningLog:
    return PoisoningLog()


@pytest.fixture
async def client(log: PoisoningLog, tmp_path: Path, database_url: str) -> AsyncIterator[TestClient]:
    settings = Settings(
        api_keys=parse_api_keys("acme:k-acme,globex:k-globex"),
        data_dir=tmp_path,
        database_url=database_url,
        write_timeout=WRITE_TIMEOUT,
        ready_fail_on_quarantine=True,
    )
    async with TestClient(TestServer(create_app(settings, event_log=log))) as c:
        yield c


async def test_by_default_readyz_counts_quarantined_records_but_stays_ready(
    log: PoisoningLog, tmp_path: Path, database_url: str
) -> None:
    settings = Settings(
        api_keys=parse_api_keys("acme:k-acme"),
        data_dir=tmp_path,
        database_url=database_url,
        write_timeout=WRITE_TIMEOUT,
    )
    async with TestClient(TestServer(create_app(settings, event_log=log))) as client:
        log.append_value(b"\x00 not a commit")
        status, body, _ = await award(client, ACME, "after")
        assert (status, body["new_balance"]) == (200, 5)

        async def counted() -> bool:
            resp = await client.get("/readyz")
            body = await resp.json()
            return body["checks"].get("quarantined_records") == 1

        await eventually(counted)
        resp = await client.get("/readyz")
        body = await resp.json()
        assert "quarantine" not in body["checks"]
        assert (resp.status, body["status"]) == (200, "ready"), body


async def eventually(check: Callable[[], Awaitable[bool]], deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while not await check():
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.05)


async def award(client: TestClient, headers: dict[str, str], pid: str, **extra: str) -> tuple:
    started = time.monotonic()
    resp = await client.post(
        f"{BASE}/points/award",
        headers={**headers, **extra},
        json={"participant_id": pid, "amount": 5},
    )
    return resp.status, await resp.json(), time.monotonic() - started


async def test_poison_records_on_the_log_stop_no_later_write_and_readyz_reports_them(
    client: TestClient, log: PoisoningLog
) -> None:
    nul = award_commit("p", 0, 1, 1, cid="nul", tenant="acme")
    nul = dataclasses.replace(
        nul, events=(nul.events[0], dataclasses.replace(nul.events[1], reason="a\x00b"))
    )
    await log.append(nul)  # straight onto the log, as a broken producer would
    log.append_value(b"\x00 not a commit")
    for tenant, headers in (("acme", ACME), ("globex", GLOBEX)):
        status, body, took = await award(client, headers, f"after-{tenant}")
        assert (status, body["new_balance"]) == (200, 5)
        assert took < WRITE_TIMEOUT
    resp = await client.get(f"{BASE}/participants/after-acme", headers=ACME)
    assert resp.status == 200

    async def not_ready() -> bool:
        resp = await client.get("/readyz")
        body = await resp.json()
        return resp.status == 503 and "2 record(s) quarantined" in body["checks"]["quarantine"]

    await eventually(not_ready)

    async def gauge_shows_two() -> bool:
        text = await (await client.get("/metrics")).text()
        return 'gamify_projector_quarantined_records{projection="participants"} 2.0' in text

    await eventually(gauge_shows_two)
    text = await (await client.get("/metrics")).text()
    assert 'gamify_projector_quarantined_total{kind="value",projection="participants"}' in text
    assert 'gamify_projector_quarantined_total{kind="decode",projection="participants"}' in text


async def test_a_write_whose_commit_is_quarantined_answers_422_at_once_and_so_does_its_retry(
    client: TestClient, log: PoisoningLog
) -> None:
    log.poison_next = True
    status, body, took = await award(client, ACME, "u1", **{"Idempotency-Key": "order-1"})
    assert status == 422 and took < WRITE_TIMEOUT
    assert "could not be applied" in body["detail"] and "not taken effect" in body["detail"]
    appended = len(log.values)
    status, body, took = await award(client, ACME, "u1", **{"Idempotency-Key": "order-1"})
    assert status == 422 and took < WRITE_TIMEOUT
    assert len(log.values) == appended  # the retry decided nothing and appended nothing
    status, body, _ = await award(client, ACME, "u1", **{"Idempotency-Key": "order-2"})
    assert (status, body["new_balance"]) == (200, 5)

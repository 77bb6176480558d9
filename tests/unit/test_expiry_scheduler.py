"""The expiry scheduler over the HTTP API's command path (in-memory log, SQLite read model),
with a pinned clock: what a pass expires, the ledger, the points answer and the webhook."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from projections.participants.expiry_queries import ExpiryQueries
from services.adapters.memory_event_log import InMemoryEventLog
from services.api.app import create_app, store_key
from services.api.keys import deps_key
from services.config import Settings, parse_api_keys
from services.scheduler import ExpiryScheduler, expiry_key

BASE = "/api/v1/gamify"
ACME = {"X-API-Key": "k-acme"}
ROLES = frozenset({"api", "projector"})  # the scheduler is built by each test, on a pinned clock


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    settings = Settings(api_keys=parse_api_keys("acme:k-acme"), data_dir=tmp_path)
    app = create_app(settings, event_log=InMemoryEventLog(), roles=ROLES)
    async with TestClient(TestServer(app)) as c:
        yield c


def scheduler(client: TestClient, at: str, batch: int = 500) -> ExpiryScheduler:
    app = client.server.app
    moment = datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(UTC)
    queries = ExpiryQueries(app[store_key].db)
    return ExpiryScheduler(app[deps_key], queries, clock=lambda: moment, batch=batch)


async def call(client: TestClient, method: str, path: str, **body: Any) -> Any:
    resp = await client.request(method, f"{BASE}{path}", headers=ACME, json=body or None)
    assert resp.status < 300, await resp.text()
    return await resp.json()


async def test_a_pass_expires_only_the_unspent_remainder_of_due_credits(client: TestClient) -> None:
    await call(client, "POST", "/points/award", participant_id="u1", amount=100)
    await call(
        client,
        "POST",
        "/points/award",
        participant_id="u1",
        amount=40,
        expires_at="2030-01-01T00:00:00Z",
    )
    await call(
        client,
        "POST",
        "/points/award",
        participant_id="u1",
        amount=30,
        expires_at="2031-01-01T00:00:00Z",
    )
    await call(client, "POST", "/points/deduct", participant_id="u1", amount=15)
    points = await call(client, "GET", "/participants/u1/points")
    assert points["expiring_soon"] == [
        {"amount": 25, "expires_at": "2030-01-01T00:00:00Z"},
        {"amount": 30, "expires_at": "2031-01-01T00:00:00Z"},
    ]

    assert (await scheduler(client, "2029-12-31T23:59:59Z").tick()).expired == 0
    assert (await scheduler(client, "2030-01-01T00:00:00Z").tick()).expired == 1
    assert (await scheduler(client, "2030-06-01T00:00:00Z").tick()).expired == 0  # once

    points = await call(client, "GET", "/participants/u1/points")
    assert (points["balance"], points["total_earned"], points["total_spent"]) == (130, 170, 15)
    assert points["expiring_soon"] == [{"amount": 30, "expires_at": "2031-01-01T00:00:00Z"}]
    ledger = await call(client, "GET", "/participants/u1/points/transactions")
    newest = ledger["transactions"][0]
    assert (newest["type"], newest["amount"], newest["balance_after"]) == ("expire", -25, 130)
    assert newest["metadata"]["expires_at"] == "2030-01-01T00:00:00Z"
    assert newest["created_at"] == "2030-01-01T00:00:00Z"
    profile = await call(client, "GET", "/participants/u1")
    assert profile["points"] == {"balance": 130, "total_earned": 170, "total_spent": 15}


async def test_a_credit_spent_before_it_expires_expires_nothing(client: TestClient) -> None:
    await call(
        client,
        "POST",
        "/points/award",
        participant_id="u2",
        amount=10,
        expires_at="2030-01-01T02:00:00+02:00",  # recorded in UTC, as every lot's expiry
    )
    points = await call(client, "GET", "/participants/u2/points")
    assert points["expiring_soon"] == [{"amount": 10, "expires_at": "2030-01-01T00:00:00Z"}]
    await call(client, "POST", "/points/deduct", participant_id="u2", amount=10)
    assert (await scheduler(client, "2030-02-01T00:00:00Z").tick()).expired == 0
    points = await call(client, "GET", "/participants/u2/points")
    assert (points["balance"], points["expiring_soon"]) == (0, [])


async def test_a_pass_covers_more_participants_than_one_batch(client: TestClient) -> None:
    for n in range(5):
        await call(
            client,
            "POST",
            "/points/award",
            participant_id=f"b{n}",
            amount=n + 1,
            expires_at="2030-01-01T00:00:00Z",
        )
    assert (await scheduler(client, "2030-01-02T00:00:00Z", batch=2).tick()).expired == 5
    for n in range(5):
        assert (await call(client, "GET", f"/participants/b{n}/points"))["balance"] == 0


async def test_the_expiry_commit_is_keyed_by_the_lot(client: TestClient) -> None:
    award = await call(
        client,
        "POST",
        "/points/award",
        participant_id="u3",
        amount=7,
        expires_at="2030-01-01T00:00:00Z",
    )
    await scheduler(client, "2030-01-01T00:00:00Z").tick()
    reader = client.server.app[deps_key].reader
    key = expiry_key(award["transaction_id"])
    outcome = await reader.get_idempotent("acme", "u3", key)
    assert outcome is not None and outcome.status == "applied"
    assert [e["type"] for e in outcome.events] == ["PointsExpired"]

"""Point expiry over a real `gamify serve` (scheduler role inside), on both logs.

An award with ``expires_at`` a few seconds ahead, partly spent; once it is due the scheduler
expires the unspent remainder: the balance drops, ``total_earned`` and ``total_spent`` and the
tier stay, the ledger shows an ``expire`` entry and ``expiring_soon`` empties.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN_KEY, MODES, Api, Server

DEADLINE = 30.0


@pytest.fixture(scope="module", params=MODES)
def server(
    request: pytest.FixtureRequest, server_factory: Callable[[str], Server]
) -> Iterator[Server]:
    srv = server_factory(request.param)
    srv.env["GAMIFY_SCHEDULER_INTERVAL_MS"] = "200"
    srv.start()
    yield srv
    srv.stop()


def utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def until(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.2)
    pytest.fail(f"not within {DEADLINE:g}s: {what}")


async def test_the_scheduler_expires_the_unspent_remainder_of_a_due_credit(api: Api) -> None:
    pid = f"exp-{uuid.uuid4().hex[:10]}"
    tier = f"t{uuid.uuid4().hex[:8]}"
    reply = await api.post(
        "/admin/tiers",
        {"code": tier, "name": "Gold", "level": 7, "criteria_config": {"min_points": 120}},
        key=ADMIN_KEY,
    )
    assert reply.status == 201, reply
    expires = utc(datetime.now(UTC) + timedelta(seconds=4))
    later = utc(datetime.now(UTC) + timedelta(days=30))
    assert (await api.award(pid, 100)).status == 200
    assert (await api.award(pid, 50, expires_at=expires)).status == 200
    assert (await api.award(pid, 5, expires_at=later)).status == 200
    assert (await api.deduct(pid, 20)).status == 200
    points = await api.points(pid)
    assert points["expiring_soon"] == [
        {"amount": 30, "expires_at": expires},
        {"amount": 5, "expires_at": later},
    ]

    async def expired() -> dict[str, Any] | None:
        found = await api.points(pid)
        return found if found["balance"] == 105 else None

    points = await until(expired, f"the credit expiring at {expires} expired")
    assert (points["total_earned"], points["total_spent"]) == (155, 20)
    assert points["expiring_soon"] == [{"amount": 5, "expires_at": later}]
    entries = (await api.ledger(pid))["transactions"]
    assert [(e["type"], e["amount"], e["balance_after"]) for e in entries[:2]] == [
        ("expire", -30, 105),
        ("deduct", -20, 135),
    ]
    assert entries[0]["metadata"]["expires_at"] == expires
    profile = (await api.get(f"/participants/{pid}")).body
    assert profile["points"] == {"balance": 105, "total_earned": 155, "total_spent": 20}
    assert profile["tier"]["code"] == tier  # reached on lifetime points: expiry never lowers it
    await asyncio.sleep(1.0)  # more passes of the scheduler change nothing
    assert (await api.points(pid))["balance"] == 105
    assert len((await api.ledger(pid))["transactions"]) == len(entries)

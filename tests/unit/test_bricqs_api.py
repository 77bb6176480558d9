"""Issue 12 over the HTTP API with an in-memory log: what reads and writes leave on the log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from schemas import codec
from services.adapters.memory_event_log import InMemoryEventLog
from services.api.app import create_app
from services.api.keys import data_keys_key
from services.config import Settings, parse_api_keys

BASE = "/api/v1/gamify"
ACME = {"X-API-Key": "k-acme"}
ADMIN = {"X-API-Key": "k-admin"}


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[TestClient, InMemoryEventLog]]:
    keys = parse_api_keys("acme:k-acme,acme:k-admin:admin")
    log = InMemoryEventLog()
    app = create_app(Settings(api_keys=keys, data_dir=tmp_path), event_log=log)
    async with TestClient(TestServer(app)) as client:
        yield client, log


def events_of(client: TestClient, log: InMemoryEventLog, command: str) -> list[dict[str, Any]]:
    """The events ``command`` left on the log, their sealed personal fields opened."""
    commits = [codec.decode(v, client.app[data_keys_key]) for v in log.values]
    return [
        codec.encode_event(e) for c in commits if c.causation.command == command for e in c.events
    ]


async def test_reads_of_unknown_participants_write_nothing_to_the_log(
    served: tuple[TestClient, InMemoryEventLog],
) -> None:
    client, log = served
    before = len(log.values)
    for path in (
        "",
        "/state",
        "/points",
        "/points/transactions",
        "/events",
        "/badges",
        "/tier",
        "/streaks",
        "/challenges",
        "/rewards",
    ):
        resp = await client.get(f"{BASE}/participants/ghost{path}", headers=ACME)
        assert resp.status == 404, path
    assert (await client.get(f"{BASE}/leaderboards/x/rank/ghost", headers=ACME)).status == 404
    assert len(log.values) == before


async def test_badge_metadata_tier_reason_and_award_expiry_reach_the_log(
    served: tuple[TestClient, InMemoryEventLog],
) -> None:
    client, log = served
    for resource, body in (
        ("badges", {"code": "b", "name": "B", "award_type": "manual"}),
        (
            "tiers",
            {
                "code": "vip",
                "name": "VIP",
                "level": 9,
                "award_type": "manual",
                "criteria_config": {"min_points": 0},
            },
        ),
    ):
        assert (await client.post(f"{BASE}/admin/{resource}", headers=ADMIN, json=body)).ok
    award = {"participant_id": "u1", "badge_code": "b", "metadata": {"campaign": "spring"}}
    assert (await client.post(f"{BASE}/badges/award", headers=ACME, json=award)).ok
    assign = {"participant_id": "u1", "tier_code": "vip", "reason": "VIP promotion"}
    assert (await client.post(f"{BASE}/tiers/assign", headers=ACME, json=assign)).ok
    points = {"participant_id": "u1", "amount": 5, "expires_at": "2030-06-01T12:00:00"}
    assert (await client.post(f"{BASE}/points/award", headers=ACME, json=points)).ok
    bad = {**points, "expires_at": "soon"}
    refused = await client.post(f"{BASE}/points/award", headers=ACME, json=bad)
    assert refused.status == 422
    assert (await refused.json())["detail"][0]["loc"] == ["body", "expires_at"]

    badge = events_of(client, log, "badges.award")[-1]
    assert (badge["type"], badge["version"]) == ("BadgeEarned", 2)
    assert badge["data"]["metadata"] == {"campaign": "spring"}
    tier = events_of(client, log, "tiers.assign")[-1]
    assert (tier["version"], tier["data"]["reason"]) == (2, "VIP promotion")
    credit = events_of(client, log, "points.award")[-1]
    assert credit["version"] == 3
    assert credit["data"]["expires_at"] == "2030-06-01T12:00:00Z"
    assert (credit["data"]["base_amount"], credit["data"]["multiplier"]) == (5, None)

"""The HTTP API over an in-memory log, with the real projector and a SQLite read model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.adapters.memory_event_log import InMemoryEventLog
from services.api.app import create_app
from services.config import Settings, parse_api_keys

BASE = "/api/v1/gamify"
ACME = {"X-API-Key": "k-acme"}
GLOBEX = {"X-API-Key": "k-globex"}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    settings = Settings(api_keys=parse_api_keys("acme:k-acme,globex:k-globex"), data_dir=tmp_path)
    app = create_app(settings, event_log=InMemoryEventLog())
    async with TestClient(TestServer(app)) as c:
        yield c


async def test_create_returns_201_and_the_reference_profile(client: TestClient) -> None:
    resp = await client.post(
        f"{BASE}/participants",
        headers=ACME,
        json={
            "participant_id": "user_123",
            "display_name": "Jane Doe",
            "avatar_url": "https://example.com/avatar.png",
            "attributes": {"plan": "premium", "signup_source": "referral"},
        },
    )
    assert resp.status == 201
    body = await resp.json()
    assert body.pop("created_at").endswith("Z")
    assert "first_seen_at" not in body and "last_seen_at" not in body  # the create shape
    assert body == {
        "participant_id": "user_123",
        "display_name": "Jane Doe",
        "avatar_url": "https://example.com/avatar.png",
        "attributes": {"plan": "premium", "signup_source": "referral"},
        "points": {"balance": 0, "total_earned": 0, "total_spent": 0},
        "tier": None,
        "badges": [],
        "streaks": None,
        "rewards_claimed": 0,
        "total_events": 0,
        "is_active": True,
    }


async def test_award_then_deduct_then_read_points_and_ledger(client: TestClient) -> None:
    award = await (
        await client.post(
            f"{BASE}/points/award", headers=ACME, json={"participant_id": "u1", "amount": 100}
        )
    ).json()
    assert (award["amount"], award["new_balance"], award["tier_upgrade"]) == (100, 100, None)
    deduct = await client.post(
        f"{BASE}/points/deduct",
        headers=ACME,
        json={"participant_id": "u1", "amount": 30, "reason": "shop"},
    )
    assert (await deduct.json())["new_balance"] == 70
    points = await (await client.get(f"{BASE}/participants/u1/points", headers=ACME)).json()
    assert points == {
        "participant_id": "u1",
        "balance": 70,
        "total_earned": 100,
        "total_spent": 30,
        "expiring_soon": [],
    }
    ledger = await (
        await client.get(f"{BASE}/participants/u1/points/transactions?page_size=1", headers=ACME)
    ).json()
    assert (ledger["total"], ledger["page_size"]) == (2, 1)
    assert [(t["type"], t["amount"], t["reason"]) for t in ledger["transactions"]] == [
        ("deduct", -30, "shop")
    ]


async def test_insufficient_points_is_400_and_debits_nothing(client: TestClient) -> None:
    await client.post(
        f"{BASE}/points/award", headers=ACME, json={"participant_id": "u1", "amount": 30}
    )
    resp = await client.post(
        f"{BASE}/points/deduct", headers=ACME, json={"participant_id": "u1", "amount": 50}
    )
    assert resp.status == 400
    assert await resp.json() == {"detail": "Insufficient points. Available: 30, requested: 50"}
    points = await (await client.get(f"{BASE}/participants/u1/points", headers=ACME)).json()
    assert points["balance"] == 30


async def test_a_retried_award_with_the_same_key_returns_the_original_and_applies_once(
    client: TestClient,
) -> None:
    headers = {**ACME, "Idempotency-Key": "order-ord_abc"}
    first = await (
        await client.post(
            f"{BASE}/points/award", headers=headers, json={"participant_id": "u1", "amount": 10}
        )
    ).json()
    again = await client.post(
        f"{BASE}/points/award", headers=headers, json={"participant_id": "u1", "amount": 10}
    )
    assert await again.json() == first
    assert again.headers["Idempotent-Replayed"] == "true"
    legacy = await (
        await client.post(
            f"{BASE}/points/award",
            headers=ACME,
            json={"participant_id": "u1", "amount": 10, "idempotency_key": "order-ord_abc"},
        )
    ).json()
    assert legacy == first
    points = await (await client.get(f"{BASE}/participants/u1/points", headers=ACME)).json()
    assert points["balance"] == 10


async def test_concurrent_awards_to_one_participant_all_apply_once(client: TestClient) -> None:
    responses = await asyncio.gather(
        *[
            client.post(
                f"{BASE}/points/award", headers=ACME, json={"participant_id": "u1", "amount": 1}
            )
            for _ in range(20)
        ]
    )
    assert [r.status for r in responses] == [200] * 20
    points = await (await client.get(f"{BASE}/participants/u1/points", headers=ACME)).json()
    assert points["balance"] == 20


async def test_tenants_never_see_each_other(client: TestClient) -> None:
    await client.post(
        f"{BASE}/points/award", headers=ACME, json={"participant_id": "u1", "amount": 5}
    )
    assert (await client.get(f"{BASE}/participants/u1", headers=GLOBEX)).status == 404
    await client.post(
        f"{BASE}/points/award", headers=GLOBEX, json={"participant_id": "u1", "amount": 7}
    )
    acme = await (await client.get(f"{BASE}/participants/u1/points", headers=ACME)).json()
    globex = await (await client.get(f"{BASE}/participants/u1/points", headers=GLOBEX)).json()
    assert (acme["balance"], globex["balance"]) == (5, 7)


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "nope"}, {"Authorization": "Bearer nope"}])
async def test_a_missing_or_unknown_key_is_401(client: TestClient, headers: dict[str, str]) -> None:
    resp = await client.get(f"{BASE}/participants/u1", headers=headers)
    assert resp.status == 401
    assert "detail" in await resp.json()


async def test_a_bearer_token_is_accepted_as_the_key(client: TestClient) -> None:
    resp = await client.post(
        f"{BASE}/participants",
        json={"participant_id": "u1"},
        headers={"Authorization": "Bearer k-acme"},
    )
    assert resp.status == 201


async def test_validation_errors_name_the_field(client: TestClient) -> None:
    resp = await client.post(
        f"{BASE}/points/award", headers=ACME, json={"participant_id": "u1", "amount": 1_000_001}
    )
    assert resp.status == 422
    [err] = (await resp.json())["detail"]
    assert err["loc"] == ["body", "amount"]


async def test_state_include_selects_sections_and_rejects_unknown_ones(client: TestClient) -> None:
    await client.post(f"{BASE}/participants", headers=ACME, json={"participant_id": "u1"})
    body = await (
        await client.get(f"{BASE}/participants/u1/state?include=points,badges", headers=ACME)
    ).json()
    assert list(body) == ["participant_id", "points", "badges"]
    full = await (await client.get(f"{BASE}/participants/u1/state", headers=ACME)).json()
    assert list(full) == [
        "participant_id",
        "points",
        "tier",
        "badges",
        "streaks",
        "challenges",
        "rewards",
    ]
    bad = await client.get(f"{BASE}/participants/u1/state?include=points,karma", headers=ACME)
    assert bad.status == 422
    assert (await bad.json())["detail"][0]["loc"] == ["query", "include"]


async def test_unknown_routes_answer_in_the_error_shape(client: TestClient) -> None:
    resp = await client.get(f"{BASE}/nothing-here", headers=ACME)
    assert resp.status == 404
    assert "detail" in await resp.json()

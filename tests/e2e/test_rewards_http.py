"""Rewards over HTTP against a real server (embedded log and Kafka): admin rewards with a code
inventory, claims with points deduction, idempotent retries, the per-participant cap, out of
stock, insufficient points, the reward list, claims per participant, profile and state counts,
the admin stock view, and (Kafka) a claim sent to the inbound topic."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

ADMIN, GLOBEX = "key-admin", "key-globex"  # keys configured by conftest
CLAIM_KEYS = {
    "claim_id",
    "participant_id",
    "reward_name",
    "reward_type",
    "code_value",
    "points_deducted",
    "new_balance",
}
LISTED_KEYS = {
    "id",
    "name",
    "type",
    "description",
    "points_cost",
    "available_codes",
    "max_claims_per_user",
    "expires_at",
}


def sfx() -> str:
    return uuid.uuid4().hex[:8]


async def define(api, **body: Any) -> dict[str, Any]:
    body = {"code": f"rw-{sfx()}", "name": "Reward", "type": "coupon", **body}
    reply = await api.post("/admin/rewards", body, key=ADMIN)
    assert reply.status == 201, reply
    return reply.body  # type: ignore[no-any-return]


async def claim(api, reward_id: str, pid: str, deduct: bool = True, idem: str | None = None):
    headers = {"Idempotency-Key": idem} if idem else None
    body = {"participant_id": pid, "points_deduction": deduct}
    return await api.post(f"/rewards/{reward_id}/claim", body, headers=headers)


async def listed(api, **params: str) -> dict[str, dict[str, Any]]:
    reply = await api.get("/rewards", params=params or None)
    assert reply.status == 200, reply
    assert reply.body["total"] == len(reply.body["rewards"]), reply
    return {r["id"]: r for r in reply.body["rewards"]}


async def claims_of(api, pid: str) -> dict[str, Any]:
    reply = await api.get(f"/participants/{pid}/rewards")
    assert reply.status == 200, reply
    return reply.body  # type: ignore[no-any-return]


async def test_claim_a_code_with_points_then_retry_then_hit_the_cap(api, pid):
    reward = await define(
        api,
        name="Coffee",
        description="One free coffee",
        points_cost=40,
        codes=["COF-1", "COF-2", "COF-3"],
    )
    rid = reward["id"]
    assert (await api.award(pid, 100)).status == 200
    before = (await listed(api))[rid]
    assert set(before) == LISTED_KEYS
    assert before == {
        "id": rid,
        "name": "Coffee",
        "type": "coupon",
        "description": "One free coffee",
        "points_cost": 40,
        "available_codes": 3,
        "max_claims_per_user": 1,
        "expires_at": None,
    }

    key = f"claim-{sfx()}"
    first = await claim(api, rid, pid, idem=key)
    assert first.status == 200, first
    assert set(first.body) == CLAIM_KEYS
    assert first.body["participant_id"] == pid
    assert first.body["reward_name"] == "Coffee" and first.body["reward_type"] == "coupon"
    assert first.body["code_value"] == "COF-1"
    assert first.body["points_deducted"] == 40 and first.body["new_balance"] == 60
    assert first.headers.get("Idempotent-Replayed") is None

    again = await claim(api, rid, pid, idem=key)
    assert again.status == 200 and again.body == first.body, again
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert (await listed(api))[rid]["available_codes"] == 2  # the retry took no second code

    capped = await claim(api, rid, pid, idem=f"claim-{sfx()}")
    assert capped.status == 409 and "cap reached" in capped.body["detail"], capped
    assert (await listed(api))[rid]["available_codes"] == 2  # a refused claim holds no code

    points = await api.points(pid)
    assert (points["balance"], points["total_spent"]) == (60, 40)
    ledger = await api.ledger(pid)
    deduct = ledger["transactions"][0]
    assert (deduct["type"], deduct["amount"]) == ("deduct", -40)
    assert deduct["metadata"] == {"reward_id": rid, "claim_id": first.body["claim_id"]}

    mine = await claims_of(api, pid)
    assert mine["participant_id"] == pid and mine["total"] == 1
    [entry] = mine["rewards"]
    assert entry["claimed_at"]
    assert {k: v for k, v in entry.items() if k != "claimed_at"} == {
        "claim_id": first.body["claim_id"],
        "reward_id": rid,
        "name": "Coffee",
        "type": "coupon",
        "code": "COF-1",
        "points_deducted": 40,
    }
    profile = await api.get(f"/participants/{pid}")
    assert profile.body["rewards_claimed"] == 1, profile
    state = await api.get(f"/participants/{pid}/state", params={"include": "rewards"})
    assert state.body["rewards"] == {"total_claimed": 1}, state


async def test_out_of_stock_and_concurrent_claims_hand_each_code_out_once(api):
    codes = ["ONE", "TWO", "THREE"]
    rid = (await define(api, points_cost=10, codes=codes))["id"]
    pids = [f"rush-{sfx()}" for _ in range(7)]
    for p in pids:
        assert (await api.award(p, 10)).status == 200
    replies = await asyncio.gather(*(claim(api, rid, p) for p in pids))
    won = [r for r in replies if r.status == 200]
    lost = [r for r in replies if r.status != 200]
    assert sorted(r.body["code_value"] for r in won) == sorted(codes), replies
    assert all(r.status == 409 and "out of stock" in r.body["detail"] for r in lost), lost
    winners = {r.body["participant_id"] for r in won}
    for p in pids:  # nobody is debited without a code
        assert (await api.points(p))["balance"] == (0 if p in winners else 10), p
    assert (await listed(api))[rid]["available_codes"] == 0
    stock = await api.get(f"/admin/rewards/{rid}/stock", key=ADMIN)
    assert stock.status == 200, stock
    assert stock.body["total_codes"] == 3 and stock.body["reserved_codes"] == 3
    assert stock.body["available_codes"] == 0 and stock.body["pending"] == []


async def test_insufficient_points_is_400_and_holds_no_code(api, pid):
    rid = (await define(api, points_cost=500, codes=["BIG"]))["id"]
    assert (await api.award(pid, 100)).status == 200
    reply = await claim(api, rid, pid)
    assert reply.status == 400, reply
    assert reply.body["detail"] == "Insufficient points. Available: 100, requested: 500"
    assert (await listed(api))[rid]["available_codes"] == 1
    assert (await api.points(pid))["balance"] == 100
    free = await claim(api, rid, pid, deduct=False)  # without deduction it is free
    assert free.status == 200 and free.body["points_deducted"] == 0, free
    assert free.body["new_balance"] == 100 and free.body["code_value"] == "BIG"


async def test_a_reward_without_inventory_gives_no_code_and_caps_per_participant(api, pid):
    rid = (await define(api, type="points_multiplier", max_claims_per_user=2))["id"]
    assert (await listed(api, reward_type="points_multiplier"))[rid]["available_codes"] is None
    assert rid not in await listed(api, reward_type="voucher")
    first = await claim(api, rid, pid, deduct=False)
    assert first.status == 200 and first.body["code_value"] is None, first
    assert first.body["new_balance"] == 0  # a free claim creates the participant
    assert (await claim(api, rid, pid, deduct=False)).status == 200
    assert (await claim(api, rid, pid, deduct=False)).status == 409
    body = await claims_of(api, pid)
    assert body["total"] == 2 and [r["code"] for r in body["rewards"]] == [None, None]
    assert (await api.get(f"/participants/{pid}")).body["rewards_claimed"] == 2


async def test_unknown_inactive_and_expired_rewards(api, pid):
    missing = await claim(api, str(uuid.uuid4()), pid)
    assert missing.status == 404 and "Reward not found" in missing.body["detail"], missing

    gone = (await define(api, codes=["G"]))["id"]
    assert (await api.request("DELETE", f"/admin/rewards/{gone}", key=ADMIN)).status in (200, 204)
    assert gone not in await listed(api)
    assert (await claim(api, gone, pid, deduct=False)).status == 404

    past = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    old = (await define(api, expires_at=past))["id"]
    assert old not in await listed(api)
    expired = await claim(api, old, pid, deduct=False)
    assert expired.status == 409 and "expired" in expired.body["detail"], expired

    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (await define(api, expires_at=future))["id"]
    assert (await listed(api))[later]["expires_at"] == future


async def test_validation_scopes_and_tenants(api, pid):
    rid = (await define(api, codes=["T1"]))["id"]
    assert (await api.get("/rewards", params={"reward_type": "gold"})).status == 422
    no_pid = await api.post(f"/rewards/{rid}/claim", {"points_deduction": True})
    assert no_pid.status == 422, no_pid
    other = await api.post(f"/rewards/{rid}/claim", {"participant_id": pid, "reward_id": "another"})
    assert other.status == 422, other
    assert (await api.get(f"/participants/{pid}/rewards")).status == 404
    assert (await api.get(f"/admin/rewards/{rid}/stock")).status == 403
    # another tenant sees neither the reward nor the stock
    assert rid not in {r["id"] for r in (await api.get("/rewards", key=GLOBEX)).body["rewards"]}
    assert (
        await api.post(f"/rewards/{rid}/claim", {"participant_id": pid}, key=GLOBEX)
    ).status == 404


async def test_an_inbound_claim_runs_the_same_saga(api, server, pid):
    if server.mode != "kafka":
        pytest.skip("the inbound topic exists with Kafka only")
    from aiokafka import AIOKafkaProducer

    rid = (await define(api, points_cost=5, codes=["IN-1"]))["id"]
    assert (await api.award(pid, 5)).status == 200
    producer = AIOKafkaProducer(bootstrap_servers=server.env["GAMIFY_KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    try:
        message = {
            "command": "rewards.claim",
            "tenant": "acme",
            "participant_id": pid,
            "reward_id": rid,
            "points_deduction": True,
        }
        topic = f"{server.env['GAMIFY_KAFKA_TOPIC_PREFIX']}inbound"
        for _ in range(2):  # two messages: the second is another request, refused by the cap
            await producer.send_and_wait(topic, json.dumps(message).encode(), key=pid.encode())
        # A marker after them on the same key: the processor runs one key's messages in order,
        # so once the marker's point is projected both claims have been handled.
        marker = {"command": "points.award", "tenant": "acme", "participant_id": pid, "amount": 1}
        await producer.send_and_wait(topic, json.dumps(marker).encode(), key=pid.encode())
    finally:
        await producer.stop()
    for _ in range(300):
        if (await api.points(pid))["balance"] == 1:  # 5 - 5 (one claim) + 1 (the marker)
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail(f"the inbound messages were not all applied\n{server.tail()}")
    body = await claims_of(api, pid)  # the second claim: dead-lettered, holds no code
    assert body["total"] == 1
    assert [r["code"] for r in body["rewards"]] == ["IN-1"]
    assert (await listed(api))[rid]["available_codes"] == 0
    stock = await api.get(f"/admin/rewards/{rid}/stock", key=ADMIN)
    assert stock.body["pending"] == [] and stock.body["reserved_codes"] == 1, stock

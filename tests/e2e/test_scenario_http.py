"""The whole engine in one participant's story, on both logs, checked against values by hand.

Definitions come from the admin API. Over several days the participant earns points, crosses
three tiers, earns badges by award and by criteria, extends and breaks a streak, completes a
challenge and claims a reward; the profile and every state section must equal what is worked
out below.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.conftest import ADMIN_KEY, Api


def day(n: int) -> str:
    """Noon UTC ``n`` days ago (streak reads judge 'now', so the story ends yesterday)."""
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    return (noon - timedelta(days=n)).strftime("%Y-%m-%dT%H:%M:%SZ")


DEFINITIONS: list[tuple[str, dict[str, Any]]] = [
    (
        "tiers",
        {
            "code": "bronze",
            "name": "Bronze",
            "level": 1,
            "color": "#CD7F32",
            "criteria_config": {"min_points": 100},
        },
    ),
    (
        "tiers",
        {
            "code": "silver",
            "name": "Silver",
            "level": 2,
            "color": "#C0C0C0",
            "criteria_config": {"min_points": 500},
        },
    ),
    (
        "tiers",
        {
            "code": "gold",
            "name": "Gold",
            "level": 3,
            "color": "#FFD700",
            "criteria_config": {"min_points": 2000},
        },
    ),
    ("badges", {"code": "welcome", "name": "Welcome", "rarity": "common", "award_type": "manual"}),
    (
        "badges",
        {
            "code": "shopper",
            "name": "Shopper",
            "rarity": "uncommon",
            "criteria_config": {"event_name": "purchase", "event_count": 2},
        },
    ),
    (
        "badges",
        {
            "code": "streaker",
            "name": "Streaker",
            "rarity": "rare",
            "criteria_config": {"streak_code": "daily_login", "streak_length": 3},
        },
    ),
    ("badges", {"code": "champion", "name": "Champion", "rarity": "epic", "award_type": "manual"}),
    (
        "rules",
        {
            "code": "purchase_points",
            "name": "Points per purchase",
            "event_name": "purchase",
            "points_property": "amount",
            "multiplier": 1,
            "conditions": {"amount": {"gte": 1}},
        },
    ),
    (
        "streaks",
        {
            "code": "daily_login",
            "name": "Daily login",
            "period": "daily",
            "grace_period_hours": 0,
            "timezone": "UTC",
        },
    ),
    (
        "challenges",
        {
            "code": "shop_and_review",
            "name": "Shop and review",
            "objectives": [
                {"id": "buy", "event_name": "purchase", "count": 2},
                {"id": "review", "event_name": "review", "count": 1},
            ],
            "window": {"type": "perpetual"},
            "rewards": {"points": 150, "badge_code": "champion"},
        },
    ),
    (
        "rewards",
        {
            "code": "coffee",
            "name": "Free coffee",
            "type": "coupon",
            "points_cost": 300,
            "max_claims_per_user": 1,
            "codes": ["COFFEE-1", "COFFEE-2"],
        },
    ),
]


async def test_one_participant_through_every_feature(api: Api, pid: str) -> None:
    ids: dict[str, str] = {}
    for resource, body in DEFINITIONS:
        reply = await api.post(f"/admin/{resource}", body, key=ADMIN_KEY)
        assert reply.status == 201, reply
        ids[body["code"]] = reply.body["id"]

    async def ok(path: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        reply = await api.post(path, body, **kw)
        assert reply.status in (200, 201), reply
        return reply.body  # type: ignore[no-any-return]

    await ok("/participants", {"participant_id": pid, "display_name": "Sam"})
    signup = await ok("/points/award", {"participant_id": pid, "amount": 120, "reason": "signup"})
    assert signup["tier_upgrade"]["code"] == "bronze"  # 120 >= 100
    await ok("/badges/award", {"participant_id": pid, "badge_code": "welcome"})

    ticks = [
        await ok(
            "/streaks/record",
            {"participant_id": pid, "streak_code": "daily_login", "timestamp": day(n)},
        )
        for n in (6, 5, 4)
    ]
    assert [t["new_count"] for t in ticks] == [1, 2, 3]
    broken = await ok(
        "/streaks/record",
        {"participant_id": pid, "streak_code": "daily_login", "timestamp": day(1)},
    )  # days 3 and 2 missed
    assert (broken["new_count"], broken["longest_count"]) == (1, 3)

    first_buy = await ok(
        "/events",
        {
            "participant_id": pid,
            "event_name": "purchase",
            "properties": {"amount": 200},
            "timestamp": day(1),
        },
    )
    assert first_buy["points_awarded"] == 200  # earned 320
    second_buy = await ok(
        "/events",
        {
            "participant_id": pid,
            "event_name": "purchase",
            "properties": {"amount": 250},
            "timestamp": day(1),
        },
    )
    assert second_buy["tier_upgrade"]["code"] == "silver"  # earned 570
    assert [b["code"] for b in second_buy["badges_unlocked"]] == ["shopper"]
    review = await ok(
        "/events", {"participant_id": pid, "event_name": "review", "timestamp": day(1)}
    )
    assert review["points_awarded"] == 150  # the challenge's reward: earned 720
    assert [b["code"] for b in review["badges_unlocked"]] == ["champion"]
    boost = await ok("/points/award", {"participant_id": pid, "amount": 1300})
    assert boost["tier_upgrade"]["code"] == "gold"  # earned 2020
    claim = await ok(
        f"/rewards/{ids['coffee']}/claim",
        {"participant_id": pid, "points_deduction": True},
        headers={"Idempotency-Key": f"coffee-{pid}"},
    )
    assert (claim["code_value"], claim["points_deducted"], claim["new_balance"]) == (
        "COFFEE-1",
        300,
        1720,
    )

    profile = (await api.get(f"/participants/{pid}")).body
    assert profile["display_name"] == "Sam"
    assert profile["points"] == {"balance": 1720, "total_earned": 2020, "total_spent": 300}
    assert {k: profile["tier"][k] for k in ("code", "name", "level", "color")} == {
        "code": "gold",
        "name": "Gold",
        "level": 3,
        "color": "#FFD700",
    }
    assert profile["tier"]["next_tier"] is None
    assert sorted(b["code"] for b in profile["badges"]) == [
        "champion",
        "shopper",
        "streaker",
        "welcome",
    ]
    assert all(b["earned"] for b in profile["badges"])
    assert profile["streaks"] == {"current": 1, "longest": 3, "last_activity_at": day(1)}
    assert (profile["rewards_claimed"], profile["total_events"]) == (1, 3)

    state = (await api.get(f"/participants/{pid}/state")).body
    assert state["points"] == profile["points"]
    assert state["tier"] == {"code": "gold", "name": "Gold", "level": 3}
    assert {b["code"]: b["earned"] for b in state["badges"]} == {
        "welcome": True,
        "shopper": True,
        "streaker": True,
        "champion": True,
    }
    assert state["streaks"] == {"current": 1, "longest": 3}
    assert state["challenges"] == {"active": 0, "completed": 1}
    assert state["rewards"] == {"total_claimed": 1}

    tier = (await api.get(f"/participants/{pid}/tier")).body
    assert [h["code"] for h in tier["tier_history"]] == ["bronze", "silver", "gold"]
    ledger = (await api.ledger(pid))["transactions"]
    assert [(t["type"], t["amount"]) for t in reversed(ledger)] == [
        ("award", 120),
        ("award", 200),
        ("award", 250),
        ("award", 150),
        ("award", 1300),
        ("deduct", -300),
    ]
    streaks = (await api.get(f"/participants/{pid}/streaks")).body["streaks"]
    assert [(s["code"], s["current_count"], s["longest_count"]) for s in streaks] == [
        ("daily_login", 1, 3)
    ]
    rewards = (await api.get(f"/participants/{pid}/rewards")).body
    assert [r["code"] for r in rewards["rewards"]] == ["COFFEE-1"]
    board = (await api.get("/rewards")).body["rewards"]
    assert {r["name"]: r["available_codes"] for r in board}["Free coffee"] == 1

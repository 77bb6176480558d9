"""Admin definitions, tiers, badges, events and earn rules over HTTP, on both logs."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN_KEY, GLOBEX_KEY, Api


def code(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def define(api: Api, resource: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = await api.post(f"/admin/{resource}", body, key=ADMIN_KEY)
    assert reply.status == 201, reply
    return reply.body  # type: ignore[no-any-return]


async def test_admin_crud_with_scopes_duplicates_and_soft_delete(api: Api) -> None:
    c = code("badge")
    assert (await api.post("/admin/badges", {"code": c, "name": "B"})).status == 403
    created = await define(api, "badges", {"code": c, "name": "Badge", "rarity": "rare"})
    assert created["code"] == c and created["is_active"] is True and created["id"]
    dup = await api.post("/admin/badges", {"code": c, "name": "Other"}, key=ADMIN_KEY)
    assert dup.status == 409
    got = await api.get(f"/admin/badges/{created['id']}", key=ADMIN_KEY)
    assert got.body == created
    patched = await api.patch(f"/admin/badges/{created['id']}", {"name": "Renamed"}, key=ADMIN_KEY)
    assert patched.status == 200 and patched.body["name"] == "Renamed"
    assert patched.body["rarity"] == "rare"
    bad = await api.patch(f"/admin/badges/{created['id']}", {"rarity": "mythic"}, key=ADMIN_KEY)
    assert bad.status == 422 and bad.body["detail"][0]["loc"] == ["body", "rarity"]
    deleted = await api.request("DELETE", f"/admin/badges/{created['id']}", key=ADMIN_KEY)
    assert deleted.status == 200 and deleted.body["is_active"] is False
    inactive = await api.get("/admin/badges", key=ADMIN_KEY, params={"is_active": "false"})
    assert c in [b["code"] for b in inactive.body["badges"]]
    active = await api.get("/admin/badges", key=ADMIN_KEY, params={"is_active": "true"})
    assert c not in [b["code"] for b in active.body["badges"]]
    assert (await api.get("/admin/badges/nope", key=ADMIN_KEY)).status == 404
    assert (await api.get("/admin/unicorns", key=ADMIN_KEY)).status == 404
    missing = await api.post("/admin/tiers", {"code": code("t"), "name": "T"}, key=ADMIN_KEY)
    assert missing.status == 422


async def test_definitions_are_addressed_by_id_or_by_code_and_ids_win(api: Api) -> None:
    c = code("by_code")
    created = await define(api, "badges", {"code": c, "name": "Badge"})
    got = await api.get(f"/admin/badges/{c}", key=ADMIN_KEY)
    assert got.status == 200 and got.body == created, got
    patched = await api.patch(f"/admin/badges/{c}", {"name": "Renamed"}, key=ADMIN_KEY)
    assert patched.status == 200 and patched.body["name"] == "Renamed", patched
    assert patched.body["id"] == created["id"]
    # a code that looks like another definition's id: the path means the id
    twin = await define(api, "badges", {"code": created["id"], "name": "Twin"})
    by_ref = await api.get(f"/admin/badges/{created['id']}", key=ADMIN_KEY)
    assert by_ref.body["code"] == c, by_ref
    assert (await api.get(f"/admin/badges/{twin['id']}", key=ADMIN_KEY)).body["name"] == "Twin"
    deleted = await api.request("DELETE", f"/admin/badges/{c}", key=ADMIN_KEY)
    assert deleted.status == 200 and deleted.body["is_active"] is False, deleted
    await api.request("DELETE", f"/admin/badges/{twin['id']}", key=ADMIN_KEY)


async def test_the_tier_list_is_ordered_by_level(api: Api) -> None:
    made = []
    # codes and creation order both disagree with the levels; manual tiers: no award reaches them
    for prefix, level in (("a", 730), ("b", 710), ("c", 720)):
        made.append(
            await define(
                api,
                "tiers",
                {
                    "code": code(f"{prefix}_lvl{level}"),
                    "name": f"L{level}",
                    "level": level,
                    "award_type": "manual",
                    "criteria_config": {"min_points": 900_000_000 + level},
                },
            )
        )
    try:
        listed = await api.get("/admin/tiers", key=ADMIN_KEY, params={"page_size": 200})
        assert listed.status == 200, listed
        levels = [t["level"] for t in listed.body["tiers"]]
        assert levels == sorted(levels), levels
        mine = [t["level"] for t in listed.body["tiers"] if t["id"] in {m["id"] for m in made}]
        assert mine == [710, 720, 730]
    finally:
        for tier in made:
            await api.request("DELETE", f"/admin/tiers/{tier['id']}", key=ADMIN_KEY)


async def test_a_rule_needs_points_or_points_property(api: Api) -> None:
    body = {"code": code("rule"), "name": "Nothing", "event_name": code("evt")}
    refused = await api.post("/admin/rules", body, key=ADMIN_KEY)
    assert refused.status == 422, refused
    assert refused.body["detail"] == [
        {
            "loc": ["body"],
            "msg": "needs at least one of: points, points_property",
            "type": "schema.anyOf",
        }
    ]
    rule = await define(api, "rules", {**body, "points": 5})
    renamed = await api.patch(f"/admin/rules/{rule['id']}", {"name": "Five"}, key=ADMIN_KEY)
    assert renamed.status == 200 and renamed.body["points"] == 5, renamed
    await api.request("DELETE", f"/admin/rules/{rule['id']}", key=ADMIN_KEY)


async def test_admin_lists_page_and_are_per_tenant(api: Api) -> None:
    prefix = code("lb")
    for i in range(3):
        await define(api, "leaderboards", {"code": f"{prefix}{i}", "name": f"L{i}"})
    listed = await api.get("/admin/leaderboards", key=ADMIN_KEY, params={"page_size": 2})
    assert listed.body["page_size"] == 2 and len(listed.body["leaderboards"]) == 2
    assert listed.body["total"] >= 3
    other = await api.get("/admin/leaderboards", key=GLOBEX_KEY)
    assert other.status == 403


async def test_tiers_upgrade_inside_awards_and_show_in_profile_state_and_tier(
    api: Api, pid: str
) -> None:
    # Thresholds far above other tests' awards in this module, so they never cross them.
    low, high = code("silver"), code("gold")
    await define(
        api,
        "tiers",
        {
            "code": low,
            "name": "Silver",
            "level": 100,
            "color": "#C0C0C0",
            "criteria_config": {"min_points": 5_000_000},
        },
    )
    await define(
        api,
        "tiers",
        {
            "code": high,
            "name": "Gold",
            "level": 200,
            "color": "#FFD700",
            "criteria_config": {"min_points": 7_000_000},
        },
    )
    for _ in range(4):
        first = await api.award(pid, 1_000_000)
        assert first.body["tier_upgrade"] is None
    crossing = await api.award(pid, 1_000_000)
    assert crossing.body["tier_upgrade"] == {
        "code": low,
        "name": "Silver",
        "level": 100,
        "previous_code": None,
        "previous_level": None,
    }
    profile = (await api.get(f"/participants/{pid}")).body
    assert {k: profile["tier"][k] for k in ("code", "name", "level", "color")} == {
        "code": low,
        "name": "Silver",
        "level": 100,
        "color": "#C0C0C0",
    }
    assert profile["tier"]["next_tier"] == {
        "code": high,
        "name": "Gold",
        "points_required": 7_000_000,
        "points_remaining": 2_000_000,
    }
    await api.award(pid, 1_000_000)
    up = await api.award(pid, 1_000_000)
    assert up.body["tier_upgrade"]["code"] == high
    state = (await api.get(f"/participants/{pid}/state", params={"include": "tier"})).body
    assert state == {"participant_id": pid, "tier": {"code": high, "name": "Gold", "level": 200}}
    tier = (await api.get(f"/participants/{pid}/tier")).body
    assert [h["code"] for h in tier["tier_history"]] == [low, high]
    assert tier["current_tier"]["code"] == high and tier["lifetime_points"] == 7_000_000


async def test_assigning_a_tier_and_unknown_tier(api: Api, pid: str) -> None:
    vip = code("vip")
    await define(
        api,
        "tiers",
        {
            "code": vip,
            "name": "VIP",
            "level": 900,
            "award_type": "manual",
            "criteria_config": {"min_points": 0},
        },
    )
    assigned = await api.post("/tiers/assign", {"participant_id": pid, "tier_code": vip})
    assert assigned.status == 200 and assigned.body["tier"]["code"] == vip
    again = await api.post("/tiers/assign", {"participant_id": pid, "tier_code": vip})
    assert again.body["changed"] is False
    missing = await api.post("/tiers/assign", {"participant_id": pid, "tier_code": "nope"})
    assert missing.status == 404


async def test_badges_by_award_and_by_rule(api: Api, pid: str) -> None:
    manual, auto = code("helper"), code("regular")
    event = code("login")
    await define(
        api, "badges", {"code": manual, "name": "Helper", "rarity": "rare", "award_type": "manual"}
    )
    await define(
        api,
        "badges",
        {
            "code": auto,
            "name": "Regular",
            "rarity": "common",
            "criteria_config": {"event_name": event, "event_count": 2},
        },
    )
    first = await api.post("/badges/award", {"participant_id": pid, "badge_code": manual})
    assert first.status == 200 and first.body["already_earned"] is False
    again = await api.post("/badges/award", {"participant_id": pid, "badge_code": manual})
    assert again.body["already_earned"] is True
    assert again.body["earned_at"] == first.body["earned_at"]
    assert (
        await api.post("/badges/award", {"participant_id": pid, "badge_code": "x"})
    ).status == 404
    one = await api.post("/events", {"participant_id": pid, "event_name": event})
    assert one.body["badges_unlocked"] == []
    two = await api.post("/events", {"participant_id": pid, "event_name": event})
    assert [b["code"] for b in two.body["badges_unlocked"]] == [auto]
    listed = (await api.get(f"/participants/{pid}/badges", params={"earned_only": "true"})).body
    assert {b["code"] for b in listed["badges"]} == {manual, auto}
    chosen = (await api.get(f"/participants/{pid}/badges", params={"badge_codes": auto})).body
    assert [b["code"] for b in chosen["badges"]] == [auto]
    state = (await api.get(f"/participants/{pid}/state", params={"include": "badges"})).body
    assert {b["code"]: b["earned"] for b in state["badges"]}[auto] is True
    profile = (await api.get(f"/participants/{pid}")).body
    assert {b["code"] for b in profile["badges"]} >= {manual, auto}


async def test_events_rules_history_batch_and_idempotency(api: Api, pid: str) -> None:
    event = code("purchase")
    await define(
        api,
        "rules",
        {
            "code": code("rule"),
            "name": "Buy",
            "event_name": event,
            "points_property": "amount",
            "multiplier": 2,
            "conditions": {"amount": {"gte": 10}},
        },
    )
    headers = {"Idempotency-Key": f"evt-{pid}"}
    tracked = await api.post(
        "/events",
        {"participant_id": pid, "event_name": event, "properties": {"amount": 30}},
        headers=headers,
    )
    assert tracked.status == 200 and tracked.body["status"] == "processed"
    assert tracked.body["points_awarded"] == 60
    replay = await api.post(
        "/events",
        {"participant_id": pid, "event_name": event, "properties": {"amount": 30}},
        headers=headers,
    )
    assert replay.body["event_id"] == tracked.body["event_id"]
    small = await api.post(
        "/events",
        {
            "participant_id": pid,
            "event_name": event,
            "properties": {"amount": 5},
            "timestamp": "2026-01-01T08:00:00",
        },
    )
    assert small.body["points_awarded"] == 0
    assert (await api.points(pid))["balance"] == 60
    history = (await api.get(f"/participants/{pid}/events", params={"page_size": 10})).body
    assert history["total"] == 2
    assert [e["properties"]["amount"] for e in history["events"]] == [30, 5]
    assert history["events"][1]["occurred_at"] == "2026-01-01T08:00:00Z"
    named = await api.get(f"/participants/{pid}/events", params={"event_name": "other"})
    assert named.body["total"] == 0
    batch = await api.post(
        "/events/batch",
        {
            "events": [
                {"participant_id": pid, "event_name": event, "properties": {"amount": 10}},
                {"participant_id": pid, "event_name": ""},
                {"participant_id": pid, "event_name": "login", "idempotency_key": f"b-{pid}"},
            ]
        },
    )
    assert (batch.body["succeeded"], batch.body["failed"]) == (2, 1)
    assert batch.body["results"][1]["success"] is False
    profile = (await api.get(f"/participants/{pid}")).body
    assert profile["total_events"] == 4 and profile["points"]["balance"] == 80
    too_many = await api.post(
        "/events/batch", {"events": [{"participant_id": pid, "event_name": "x"}] * 101}
    )
    assert too_many.status == 422


@pytest.mark.parametrize(
    "body",
    [
        {"participant_id": "p", "event_name": ""},
        {"participant_id": "p", "event_name": "x" * 101},
        {"participant_id": "p", "event_name": "x", "timestamp": "yesterday"},
        {"participant_id": "p", "event_name": "x", "properties": [1]},
    ],
)
async def test_bad_events_are_422(api: Api, body: dict[str, Any]) -> None:
    assert (await api.post("/events", body)).status == 422


async def test_a_batch_answers_each_item_and_a_retry_records_nothing_twice(
    api: Api, pid: str
) -> None:
    reused = f"award-{pid}"
    assert (await api.award(pid, 5, idem=reused)).status == 200
    other = f"{pid}-b"
    items: list[Any] = [
        {"participant_id": pid, "event_name": "login", "idempotency_key": f"ok-{pid}"},
        {"participant_id": pid, "event_name": "login", "timestamp": "0001-01-01T00:00:00+01:00"},
        {"participant_id": pid, "event_name": "login", "timestamp": "9999-12-31T23:59:59-01:00"},
        {"participant_id": pid, "event_name": "login", "idempotency_key": reused},
        {"participant_id": other, "event_name": ""},
        ["not", "an", "object"],
        {"participant_id": other, "event_name": "login", "idempotency_key": f"ok-{other}"},
    ]
    first = await api.post("/events/batch", {"events": items})
    assert first.status == 200, first
    assert [r["success"] for r in first.body["results"]] == [True] + [False] * 5 + [True]
    assert (first.body["succeeded"], first.body["failed"]) == (2, 5)
    failed = first.body["results"][1:6]
    assert all(isinstance(r["status_code"], int) and r["error"] for r in failed)
    assert (failed[2]["status_code"], failed[3]["status_code"]) == (409, 422)
    again = await api.post("/events/batch", {"events": items})
    assert again.status == 200, again
    assert again.body["results"][0]["event_id"] == first.body["results"][0]["event_id"]
    assert again.body["results"][6]["fact_id"] == first.body["results"][6]["fact_id"]
    for who in (pid, other):
        history = await api.get(f"/participants/{who}/events")
        assert history.body["total"] == 1, (who, history)

"""Issue 12 (sections 1, 2, 6) over a real server, on both logs: the reference's exact shapes,
reads that create nothing, POST /points/award-batch, tier multipliers and evaluating definitions.

Each test works in a tenant of its own (admin keys added to the server below), so definitions
one test creates never reach another test's participants.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.conftest import ACME_KEY, MODES, Api, Server
from tests.reference_shapes import participants_examples, shape_differences

TENANT_KEYS = {t: f"key-{t}" for t in ("shape", "badge", "multi", "eval", "batch")}
SHAPE, BADGE, MULTI, EVAL, BATCH = (TENANT_KEYS[t] for t in TENANT_KEYS)


@pytest.fixture(scope="module", params=MODES)
def server(
    request: pytest.FixtureRequest, server_factory: Callable[[str], Server]
) -> Iterator[Server]:
    srv = server_factory(request.param)
    extra = ",".join(f"{tenant}:{key}:admin" for tenant, key in TENANT_KEYS.items())
    srv.env["GAMIFY_API_KEYS"] = f"{srv.env['GAMIFY_API_KEYS']},{extra}"
    srv.start()
    yield srv
    srv.stop()


def new(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def define(api: Api, key: str, resource: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = await api.post(f"/admin/{resource}", body, key=key)
    assert reply.status == 201, reply
    return reply.body  # type: ignore[no-any-return]


async def ok(reply_: Any, status: int = 200) -> Any:
    reply = await reply_
    assert reply.status == status, reply
    return reply.body


# --------------------------------------------------------------------------------------------
# Section 1: the reference's shapes


async def test_the_participants_api_answers_exactly_the_key_sets_of_the_reference(
    api: Api,
) -> None:
    examples = participants_examples()
    await define(api, SHAPE, "tiers", tier("gold", 3, 100, color="#FFD700"))
    await define(api, SHAPE, "tiers", tier("platinum", 4, 10_000_000))
    await define(
        api,
        SHAPE,
        "badges",
        {
            "code": "first_steps",
            "name": "First Steps",
            "rarity": "common",
            "criteria_config": {"min_points": 1},
        },
    )
    await define(api, SHAPE, "badges", {"code": "power_user", "name": "Power User"})
    await define(api, SHAPE, "streaks", {"code": "daily_login", "name": "Daily"})

    fresh = {
        "participant_id": new("fresh"),
        "display_name": "Jane Doe",
        "avatar_url": "https://example.com/avatar.png",
        "attributes": {"plan": "premium", "signup_source": "referral"},
    }
    created = await ok(api.post("/participants", fresh, key=SHAPE), 201)
    assert shape_differences(examples["created"], created) == []

    pid = new("jane")
    await ok(api.post("/participants", {**fresh, "participant_id": pid}, key=SHAPE), 201)
    await ok(api.award(pid, 500, key=SHAPE))
    await ok(
        api.post(
            "/streaks/record", {"participant_id": pid, "streak_code": "daily_login"}, key=SHAPE
        )
    )
    profile = await ok(api.get(f"/participants/{pid}", key=SHAPE))
    assert shape_differences(examples["profile"], profile) == [], profile
    patch = {"display_name": "Jane Smith", "attributes": {"plan": "enterprise"}}
    patched = await ok(api.patch(f"/participants/{pid}", patch, key=SHAPE))
    assert shape_differences(examples["profile"], patched) == [], patched
    state = await ok(api.get(f"/participants/{pid}/state", key=SHAPE))
    assert shape_differences(examples["state"], state) == [], state
    # an upsert of a participant with a tier: the create shape, its sections as in the profile
    again = await ok(api.post("/participants", {**fresh, "participant_id": pid}, key=SHAPE), 201)
    full = {
        **examples["created"],
        **{k: examples["profile"][k] for k in ("tier", "badges", "streaks")},
    }
    assert shape_differences(full, again) == [], again
    assert profile["tier"]["next_tier"]["points_remaining"] == 10_000_000 - 500


async def test_reads_of_an_unknown_participant_answer_404_and_create_nothing(api: Api) -> None:
    ghost = new("ghost")
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
        reply = await api.get(f"/participants/{ghost}{path}")
        assert reply.status == 404, (path, reply)
    assert (await api.get(f"/state/{ghost}")).status == 404
    assert (await api.get(f"/participants/{ghost}")).status == 404  # still unknown
    # the first write creates it
    await ok(api.award(ghost, 5))
    assert (await ok(api.get(f"/participants/{ghost}")))["points"]["total_earned"] == 5


async def test_badges_answer_badge_name_icon_total_and_earned_count(api: Api) -> None:
    code50 = "b" * 40 + uuid.uuid4().hex[:10]
    icon = "https://example.com/badges/b.png"
    await define(
        api,
        BADGE,
        "badges",
        {
            "code": code50,
            "name": "Fifty",
            "rarity": "rare",
            "icon_url": icon,
            "award_type": "manual",
        },
    )
    await define(api, BADGE, "badges", {"code": new("other"), "name": "Other"})
    too_long = await api.post("/admin/badges", {"code": code50 + "x", "name": "X"}, key=BADGE)
    assert too_long.status == 422, too_long
    pid = new("p")
    body = {"participant_id": pid, "badge_code": code50, "metadata": {"campaign": "spring"}}
    awarded = await ok(api.post("/badges/award", body, key=BADGE))
    assert (awarded["badge_name"], awarded["icon"], awarded["rarity"]) == ("Fifty", icon, "rare")
    assert "name" not in awarded and awarded["already_earned"] is False
    again = await ok(api.post("/badges/award", body, key=BADGE))
    assert again["already_earned"] is True and again["earned_at"] == awarded["earned_at"]
    listed = await ok(api.get(f"/participants/{pid}/badges", key=BADGE))
    assert (listed["total"], listed["earned_count"]) == (len(listed["badges"]), 1)
    assert listed["total"] >= 2
    mine = next(b for b in listed["badges"] if b["code"] == code50)
    assert mine["icon"] == icon and "icon_url" not in mine
    long_code = await api.post("/badges/award", {**body, "badge_code": code50 + "x"}, key=BADGE)
    assert long_code.status == 422 and long_code.body["detail"][0]["loc"] == ["body", "badge_code"]


async def test_tier_assign_keeps_its_reason_and_get_tier_says_tier_history(api: Api) -> None:
    vip = new("vip")
    await define(api, BADGE, "tiers", {**tier(vip, 900, 1_000_000_000), "award_type": "manual"})
    pid = new("p")
    body = {"participant_id": pid, "tier_code": vip, "reason": "VIP promotion"}
    assigned = await ok(api.post("/tiers/assign", body, key=BADGE))
    assert (assigned["changed"], assigned["reason"]) == (True, "VIP promotion")
    got = await ok(api.get(f"/participants/{pid}/tier", key=BADGE))
    assert "history" not in got and [h["code"] for h in got["tier_history"]] == [vip]
    assert got["current_tier"]["code"] == vip


async def test_every_keyed_write_says_idempotent_replayed_on_a_repeat(api: Api) -> None:
    """The README: a repeat with the same Idempotency-Key returns the original answer with
    `Idempotent-Replayed: true` (the first answer never carries it), for every keyed write."""
    vip = new("vip")
    await define(api, BADGE, "tiers", {**tier(vip, 901, 1_000_000_000), "award_type": "manual"})
    pid = new("p")
    writes: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/participants", {"participant_id": pid, "display_name": "R"}),
        ("PATCH", f"/participants/{pid}", {"display_name": "R2"}),
        ("POST", "/points/award", {"participant_id": pid, "amount": 5, "reason": "r"}),
        ("POST", "/points/deduct", {"participant_id": pid, "amount": 1, "reason": "r"}),
        ("POST", "/events", {"participant_id": pid, "event_name": "visit"}),
        ("POST", "/tiers/assign", {"participant_id": pid, "tier_code": vip}),
    ]
    for method, path, body in writes:
        headers = {"Idempotency-Key": new("k")}
        first = await api.request(method, path, json_body=body, key=BADGE, headers=headers)
        again = await api.request(method, path, json_body=body, key=BADGE, headers=headers)
        assert first.status in (200, 201) and again.status == first.status, (path, first, again)
        assert first.headers.get("Idempotent-Replayed") is None, (path, first)
        assert again.headers.get("Idempotent-Replayed") == "true", (path, again)


# --------------------------------------------------------------------------------------------
# Section 2: POST /points/award-batch


async def test_award_batch_answers_each_item_and_replays_keyed_items(api: Api) -> None:
    a, b = new("a"), new("b")
    key = new("order")
    awards: list[Any] = [
        {
            "participant_id": a,
            "amount": 10,
            "idempotency_key": key,
            "reason": "order",
            "metadata": {"order": 1},
            "expires_at": "2030-01-01T00:00:00+02:00",
        },
        {"participant_id": b, "amount": 0, "idempotency_key": new("k")},
        "not an object",
        {"participant_id": b, "amount": 5, "expires_at": "not a date"},
        {"participant_id": a, "amount": 7},
    ]
    first = await ok(api.post("/points/award-batch", {"awards": awards}, key=BATCH))
    assert (first["total"], first["succeeded"], first["failed"]) == (5, 2, 3)
    results = first["results"]
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert [r["success"] for r in results] == [True, False, False, False, True]
    assert results[0]["amount"] == 10 and results[0]["replayed"] is False
    assert results[1]["status_code"] == 422
    assert results[1]["error"][0]["loc"] == ["awards[1]", "amount"]
    assert results[2] == {
        "index": 2,
        "success": False,
        "status_code": 422,
        "error": [{"loc": ["awards[2]"], "msg": "must be an object", "type": "value_error"}],
    }
    assert results[3]["status_code"] == 422 and results[3]["participant_id"] == b
    assert (await api.points(a, key=BATCH))["balance"] == 17

    again = await ok(api.post("/points/award-batch", {"awards": awards[:1]}, key=BATCH))
    replay = again["results"][0]
    assert replay["replayed"] is True
    assert replay["transaction_id"] == results[0]["transaction_id"]
    assert (await api.points(a, key=BATCH))["balance"] == 17  # recorded once
    other = {"participant_id": a, "amount": 99, "idempotency_key": key}  # same key, other body
    refused = await ok(api.post("/points/award-batch", {"awards": [other]}, key=BATCH))
    assert refused["results"][0]["status_code"] == 422, refused
    ledger = await api.ledger(a, key=BATCH)
    assert len(ledger["transactions"]) == 2


async def test_award_batch_refuses_only_what_is_not_a_batch(api: Api) -> None:
    one = {"participant_id": new("p"), "amount": 1}
    for body in ({"awards": []}, {"awards": [one] * 101}, {"awards": one}, {}):
        reply = await api.post("/points/award-batch", body, key=BATCH)
        assert reply.status == 422 and reply.body["detail"][0]["loc"] == ["body", "awards"]
    assert (await api.post("/points/award-batch", [one], key=BATCH)).status == 400
    full = await ok(api.post("/points/award-batch", {"awards": [one] * 100}, key=BATCH))
    assert full["succeeded"] == 100
    assert (await api.points(one["participant_id"], key=BATCH))["balance"] == 100


# --------------------------------------------------------------------------------------------
# Section 6: tier multiplier, evaluation, a tier status that never contradicts itself


async def test_a_tier_multiplier_multiplies_awards_and_rule_points_floored(api: Api) -> None:
    silver = new("silver")
    await define(api, MULTI, "tiers", {**tier(silver, 1, 100), "multiplier": 1.5})
    event = new("buy")
    await define(
        api, MULTI, "rules", {"code": new("rule"), "name": "R", "event_name": event, "points": 5}
    )
    pid = new("p")
    first = await ok(api.award(pid, 100, key=MULTI))  # no tier yet: not multiplied
    assert (first["amount"], first["tier_upgrade"]["code"]) == (100, silver)
    second = await ok(api.award(pid, 33, key=MULTI))  # 33 x 1.5 = 49.5 -> 49
    assert second["amount"] == 49  # recorded with base_amount 33, multiplier "1.5" (unit tests)
    assert second["new_balance"] == 149
    tracked = await ok(api.post("/events", {"participant_id": pid, "event_name": event}, key=MULTI))
    assert tracked["points_awarded"] == 7  # 5 x 1.5 = 7.5 -> 7
    batch = await ok(
        api.post(
            "/points/award-batch", {"awards": [{"participant_id": pid, "amount": 3}]}, key=MULTI
        )
    )
    assert batch["results"][0]["amount"] == 4  # 4.5 -> 4
    assert (await api.points(pid, key=MULTI))["total_earned"] == 100 + 49 + 7 + 4


async def test_evaluate_gives_a_new_tier_to_those_who_qualify_and_get_tier_never_contradicts(
    api: Api,
) -> None:
    rich, poor = new("rich"), new("poor")
    await ok(api.award(rich, 500, key=EVAL))
    await ok(api.award(poor, 50, key=EVAL))
    gold = await define(api, EVAL, "tiers", tier(new("gold"), 1, 100))
    plat = await define(api, EVAL, "tiers", tier(new("plat"), 2, 10_000))

    before = await ok(api.get(f"/participants/{rich}/tier", key=EVAL))
    assert before["current_tier"] is None
    assert before["pending_tier"]["code"] == gold["code"]
    assert before["next_tier"] == {
        "code": plat["code"],
        "name": plat["name"],
        "points_required": 10_000,
        "points_remaining": 9_500,
    }
    evaluate = f"/admin/tiers/{gold['id']}/evaluate"
    assert (await api.post(evaluate, key=ACME_KEY)).status == 403
    runs = await asyncio.gather(api.post(evaluate, key=EVAL), api.post(evaluate, key=EVAL))
    assert [r.status for r in runs] == [200, 200], runs
    assert sum(r.body["changed"] for r in runs) == 1, runs  # the other replayed or saw it held
    summary = runs[0].body
    assert (summary["kind"], summary["code"], summary["scanned"]) == ("tier", gold["code"], 1)
    after = await ok(api.get(f"/participants/{rich}/tier", key=EVAL))
    assert after["current_tier"]["code"] == gold["code"] and after["pending_tier"] is None
    assert [h["code"] for h in after["tier_history"]] == [gold["code"]]
    again = await ok(api.post(evaluate, key=EVAL))
    assert (again["qualified"], again["changed"]) == (0, 0)

    await ok(
        api.patch(f"/admin/tiers/{gold['id']}", {"criteria_config": {"min_points": 10}}, key=EVAL)
    )
    lowered = await ok(api.post(evaluate, key=EVAL))
    assert (lowered["version"], lowered["changed"]) == (summary["version"] + 1, 1), lowered
    assert (await ok(api.get(f"/participants/{poor}/tier", key=EVAL)))["current_tier"][
        "code"
    ] == gold["code"]


async def test_evaluate_unlocks_a_new_badge_and_refuses_what_cannot_be_evaluated(
    api: Api,
) -> None:
    pid = new("p")
    await ok(api.award(pid, 300, key=EVAL))
    badge = await define(
        api, EVAL, "badges", {"code": new("b"), "name": "B", "criteria_config": {"min_points": 250}}
    )
    done = await ok(api.post(f"/admin/badges/{badge['code']}/evaluate", key=EVAL))
    assert done["kind"] == "badge" and done["changed"] == done["qualified"] >= 1, done
    listed = await ok(
        api.get(f"/participants/{pid}/badges", key=EVAL, params={"earned_only": "true"})
    )
    assert badge["code"] in [b["code"] for b in listed["badges"]]
    manual = await define(
        api, EVAL, "badges", {"code": new("m"), "name": "M", "award_type": "manual"}
    )
    assert (await api.post(f"/admin/badges/{manual['id']}/evaluate", key=EVAL)).status == 409
    assert (await api.post("/admin/badges/nope/evaluate", key=EVAL)).status == 404
    assert (await api.post("/admin/streaks/x/evaluate", key=EVAL)).status == 404


def tier(code: str, level: int, min_points: int, **extra: Any) -> dict[str, Any]:
    return {
        "code": code,
        "name": code.title(),
        "level": level,
        "criteria_config": {"min_points": min_points},
        **extra,
    }

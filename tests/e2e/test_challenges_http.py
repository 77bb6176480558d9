"""Challenges over HTTP against a real server (embedded log and Kafka): admin definitions,
events until completion, rewards in the event response, the participant's challenge list,
the state's counts and the profile."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

ADMIN = "key-admin"  # acme's admin key, configured by conftest


def sfx() -> str:
    """Codes and event names unique to a test: every test of the module shares one server."""
    return uuid.uuid4().hex[:8]


def iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


async def define(api, resource: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = await api.post(f"/admin/{resource}", body, key=ADMIN)
    assert reply.status == 201, reply
    return reply.body  # type: ignore[no-any-return]


async def track(api, pid: str, name: str, **extra: Any) -> dict[str, Any]:
    reply = await api.post("/events", {"participant_id": pid, "event_name": name, **extra})
    assert reply.status == 200, reply
    return reply.body  # type: ignore[no-any-return]


async def listed(api, pid: str, **params: str) -> dict[str, dict[str, Any]]:
    reply = await api.get(f"/participants/{pid}/challenges", params=params or None)
    assert reply.status == 200, reply
    assert reply.body["participant_id"] == pid, reply
    return {c["code"]: c for c in reply.body["challenges"]}


async def test_completing_a_challenge_pays_points_and_a_badge_in_the_event_response(api, pid):
    s = sfx()
    badge = await define(
        api,
        "badges",
        {"code": f"champ-{s}", "name": "Champion", "rarity": "rare", "award_type": "manual"},
    )
    code = f"learn-{s}"
    await define(
        api,
        "challenges",
        {
            "code": code,
            "name": "Learner",
            "description": "Two lessons and a good quiz",
            "objectives": [
                {"id": "lessons", "label": "Lessons", "event_name": f"lesson-{s}", "count": 2},
                {"id": "quiz", "event_name": f"quiz-{s}", "conditions": {"score": {"gte": 80}}},
            ],
            "window": {"type": "perpetual"},
            "rewards": {"points": 150, "badge_code": badge["code"]},
        },
    )
    assert (await api.register(pid)).status == 201
    before = (await listed(api, pid))[code]
    assert before["joined"] is False and before["progress_percent"] == 0, before
    assert [o["progress"] for o in before["objectives"]] == [0, 0], before

    first = await track(api, pid, f"lesson-{s}")
    assert first["points_awarded"] == 0 and first["badges_unlocked"] == [], first
    got = (await listed(api, pid))[code]
    assert got["joined"] is True and got["progress_percent"] == 33, got
    assert got["window"]["type"] == "perpetual" and got["window"]["key"] == "perpetual", got
    assert (await api.get(f"/state/{pid}")).body["challenges"] == {"active": 1, "completed": 0}

    assert (await track(api, pid, f"quiz-{s}", properties={"score": 50}))["points_awarded"] == 0
    await track(api, pid, f"lesson-{s}")
    done = await track(api, pid, f"quiz-{s}", properties={"score": 90})
    assert done["points_awarded"] == 150, done
    assert done["badges_unlocked"] == [
        {"code": badge["code"], "name": "Champion", "rarity": "rare"}
    ], done

    got = (await listed(api, pid))[code]
    assert got["is_completed"] is True and got["progress_percent"] == 100, got
    assert got["completed_at"] and got["completed_at"].endswith("Z"), got
    assert [(o["id"], o["progress"], o["target"], o["complete"]) for o in got["objectives"]] == [
        ("lessons", 2, 2, True),
        ("quiz", 1, 1, True),
    ]
    assert code in await listed(api, pid, status="completed")
    assert code not in await listed(api, pid, status="active")
    assert (await api.get(f"/state/{pid}")).body["challenges"] == {"active": 0, "completed": 1}
    profile = (await api.get(f"/participants/{pid}")).body
    assert profile["points"]["total_earned"] == 150, profile
    assert badge["code"] in [b["code"] for b in profile["badges"]], profile
    ledger = await api.ledger(pid)
    assert [t.get("reason") for t in ledger["transactions"]] == [f"challenge:{code}"], ledger

    # completed in its (only) window: further events change nothing
    assert (await track(api, pid, f"quiz-{s}", properties={"score": 99}))["points_awarded"] == 0
    assert (await api.points(pid))["total_earned"] == 150


async def test_challenge_points_report_the_tier_upgrade_they_cause(api, pid):
    s = sfx()
    await define(
        api,
        "tiers",
        {
            "code": f"gold-{s}",
            "name": "Gold",
            "level": 50,
            "criteria_config": {"min_points": 900_000},
        },
    )
    await define(
        api,
        "challenges",
        {
            "code": f"big-{s}",
            "name": "Big",
            "objectives": [{"id": "o1", "event_name": f"deal-{s}"}],
            "rewards": {"points": 900_000},
        },
    )
    reply = await track(api, pid, f"deal-{s}")
    assert reply["points_awarded"] == 900_000, reply
    assert reply["tier_upgrade"] is not None and reply["tier_upgrade"]["code"] == f"gold-{s}"


async def test_a_fixed_window_counts_only_events_that_occurred_inside_it(api, pid):
    s = sfx()
    now = datetime.now(UTC).replace(microsecond=0)
    start, end = now - timedelta(days=1), now + timedelta(days=30)
    code = f"month-{s}"
    await define(
        api,
        "challenges",
        {
            "code": code,
            "name": "Month",
            "objectives": [{"id": "o1", "event_name": f"run-{s}", "count": 3}],
            "window": {"type": "fixed", "starts_at": iso(start), "ends_at": iso(end)},
        },
    )
    await track(api, pid, f"run-{s}", timestamp=iso(start - timedelta(seconds=1)))
    assert code not in {c for c, v in (await listed(api, pid)).items() if v["joined"]}
    await track(api, pid, f"run-{s}", timestamp=iso(start))
    await track(api, pid, f"run-{s}")
    got = (await listed(api, pid))[code]
    assert got["objectives"][0]["progress"] == 2, got
    assert got["window"] == {
        "type": "fixed",
        "key": "fixed",
        "days": None,
        "starts_at": iso(start),
        "ends_at": iso(end),
        "is_open": True,
    }
    assert code in await listed(api, pid, status="active")
    assert (await api.get(f"/state/{pid}")).body["challenges"] == {"active": 1, "completed": 0}


async def test_a_rolling_window_restarts_with_fresh_progress_after_its_days(api, pid):
    s = sfx()
    code = f"week-{s}"
    await define(
        api,
        "challenges",
        {
            "code": code,
            "name": "Week",
            "objectives": [{"id": "o1", "event_name": f"swim-{s}", "count": 5}],
            "window": {"type": "rolling", "days": 7},
        },
    )
    old = datetime.now(UTC).replace(microsecond=0) - timedelta(days=10)
    await track(api, pid, f"swim-{s}", timestamp=iso(old))
    await track(api, pid, f"swim-{s}", timestamp=iso(old + timedelta(days=1)))
    stale = (await listed(api, pid))[code]  # that window ended three days ago
    assert stale["joined"] is False and stale["objectives"][0]["progress"] == 0, stale
    assert (await api.get(f"/state/{pid}")).body["challenges"] == {"active": 0, "completed": 0}
    await track(api, pid, f"swim-{s}")
    got = (await listed(api, pid))[code]
    assert got["objectives"][0]["progress"] == 1, got
    assert got["window"]["key"] != f"rolling:{iso(old)}" and got["window"]["is_open"], got


async def test_a_retired_challenge_stays_listed_with_its_progress(api, pid):
    s = sfx()
    code = f"retired-{s}"
    made = await define(
        api,
        "challenges",
        {
            "code": code,
            "name": "Retired",
            "objectives": [{"id": "o1", "event_name": f"walk-{s}", "count": 2}],
        },
    )
    await track(api, pid, f"walk-{s}")
    reply = await api.request("DELETE", f"/admin/challenges/{made['id']}", key=ADMIN)
    assert reply.status == 200, reply
    got = (await listed(api, pid))[code]
    assert got["is_active"] is False and got["name"] == "Retired", got
    assert got["objectives"][0]["progress"] == 1 and got["window"]["is_open"] is False, got
    assert code not in await listed(api, pid, status="active")
    await track(api, pid, f"walk-{s}")  # no longer counts
    assert (await listed(api, pid))[code]["objectives"][0]["progress"] == 1


async def test_listing_challenges_checks_the_participant_and_the_status(api, pid):
    assert (await api.get(f"/participants/{pid}/challenges")).status == 404
    await api.register(pid)
    reply = await api.get(f"/participants/{pid}/challenges", params={"status": "nope"})
    assert reply.status == 422, reply
    assert reply.body["detail"][0]["loc"] == ["query", "status"], reply

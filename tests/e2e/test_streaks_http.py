"""Streaks over HTTP against a real server (embedded log and Kafka): recording ticks with explicit
timestamps, GET /streaks, the profile and state sections, freezes, and errors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN_KEY, Api

# Expectations name the server's current day, week, month: never across a UTC midnight.
pytestmark = pytest.mark.usefixtures("clear_of_midnight")

RECORD_KEYS = {
    "streak_code",
    "new_count",
    "longest_count",
    "is_new_record",
    "already_recorded",
    "freezes_used",
    "freezes_available",
}


def code(prefix: str = "streak") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_TODAY: dict[object, datetime] = {}  # UTC date -> the moment days_ago(0) names on it


def days_ago(n: int) -> str:
    """A moment UTC ``n`` days before today, never in the future (the boundary refuses ticks
    past now + 5 min): noon, or a minute before the first call of the day when that is earlier.
    Reads use the server's now, so ``days_ago(0)`` falls on the server's current UTC day, and
    every call on one UTC day names the same moment."""
    now = datetime.now(UTC).replace(microsecond=0)
    if now.date() not in _TODAY:
        midnight = now.replace(hour=0, minute=0, second=0)
        into_day = min(
            timedelta(hours=12), max(timedelta(0), now - midnight - timedelta(minutes=1))
        )
        _TODAY[now.date()] = midnight + into_day
    return iso(_TODAY[now.date()] - timedelta(days=n))


async def define(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    reply = await api.post("/admin/streaks", body, key=ADMIN_KEY)
    assert reply.status == 201, reply
    return reply.body  # type: ignore[no-any-return]


async def record(api: Api, pid: str, streak: str, timestamp: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"participant_id": pid, "streak_code": streak}
    if timestamp is not None:
        body["timestamp"] = timestamp
    reply = await api.post("/streaks/record", body)
    assert reply.status == 200, reply
    assert set(reply.body) == RECORD_KEYS, reply
    return reply.body  # type: ignore[no-any-return]


def counts(answer: dict[str, Any]) -> tuple[int, int, bool, bool]:
    return (
        answer["new_count"],
        answer["longest_count"],
        answer["is_new_record"],
        answer["already_recorded"],
    )


async def test_documented_sequence_then_reads(api: Api, pid: str) -> None:
    daily = code("daily")
    await define(api, {"code": daily, "name": "Daily login", "period": "daily"})
    yesterday, today = days_ago(1), days_ago(0)

    first = await record(api, pid, daily, yesterday)  # creates the participant
    assert first["streak_code"] == daily
    assert counts(first) == (1, 1, True, False)
    assert (first["freezes_used"], first["freezes_available"]) == (0, 0)
    assert counts(await record(api, pid, daily, yesterday)) == (1, 1, False, True)
    assert counts(await record(api, pid, daily, today)) == (2, 2, True, False)
    assert counts(await record(api, pid, daily, yesterday)) == (2, 2, False, True)  # late

    listed = await api.get(f"/participants/{pid}/streaks")
    assert listed.status == 200, listed
    assert listed.body == {
        "participant_id": pid,
        "streaks": [
            {
                "code": daily,
                "name": "Daily login",
                "current_count": 2,
                "longest_count": 2,
                "last_recorded_at": today,
                "is_at_risk": False,
                "period": "daily",
                "freezes_available": 0,
            }
        ],
    }
    profile = await api.get(f"/participants/{pid}")
    assert profile.status == 200, profile
    assert profile.body["streaks"] == {"current": 2, "longest": 2, "last_activity_at": today}
    state = await api.get(f"/participants/{pid}/state", params={"include": "streaks"})
    assert state.status == 200, state
    assert state.body == {"participant_id": pid, "streaks": {"current": 2, "longest": 2}}


async def test_at_risk_broken_weekly_and_best(api: Api, pid: str) -> None:
    risky, lapsed, weekly = code("risky"), code("lapsed"), code("weekly")
    await define(api, {"code": risky, "name": "Risky", "display_order": 1})
    await define(api, {"code": lapsed, "name": "Lapsed", "display_order": 2})
    await define(api, {"code": weekly, "name": "Weekly", "period": "weekly", "display_order": 3})
    for ts in (days_ago(6), days_ago(5), days_ago(4)):
        await record(api, pid, lapsed, ts)  # 3 days, then nothing: broken now
    await record(api, pid, risky, days_ago(1))  # running, nothing yet today
    await record(api, pid, weekly, days_ago(0))

    listed = (await api.get(f"/participants/{pid}/streaks")).body["streaks"]
    brief = [(s["code"], s["current_count"], s["longest_count"], s["is_at_risk"]) for s in listed]
    assert brief == [(risky, 1, 1, True), (lapsed, 0, 3, False), (weekly, 1, 1, False)]
    assert listed[2]["period"] == "weekly"

    profile = (await api.get(f"/participants/{pid}")).body
    # current 1 for risky and weekly, longest 1 each: the code decides
    best_code = min(risky, weekly)
    best_at = days_ago(1) if best_code == risky else days_ago(0)
    assert profile["streaks"] == {"current": 1, "longest": 1, "last_activity_at": best_at}

    restarted = await record(api, pid, lapsed, days_ago(0))
    assert counts(restarted) == (1, 3, False, False)


async def test_grace_and_freezes_bridge_missed_days(api: Api, pid: str) -> None:
    graceful, frozen = code("grace"), code("freeze")
    await define(api, {"code": graceful, "name": "G", "grace_period_hours": 23})
    allowance = {"per_period": "week", "max": 1}
    await define(api, {"code": frozen, "name": "F", "freeze_allowance": allowance})

    await record(api, pid, graceful, days_ago(2))
    assert counts(await record(api, pid, graceful, days_ago(0))) == (2, 2, True, False)

    first = await record(api, pid, frozen, days_ago(2))
    assert first["freezes_available"] == 1
    bridged = await record(api, pid, frozen, days_ago(0))  # yesterday bridged by the freeze
    assert counts(bridged) == (2, 2, True, False)
    assert (bridged["freezes_used"], bridged["freezes_available"]) == (1, 0)
    again = await record(api, pid, frozen, days_ago(0))
    assert counts(again) == (2, 2, False, True)
    assert (again["freezes_used"], again["freezes_available"]) == (0, 0)


async def test_errors(api: Api, pid: str) -> None:
    unknown = await api.post("/streaks/record", {"participant_id": pid, "streak_code": "nope_x"})
    assert unknown.status == 404, unknown
    assert "nope_x" in unknown.body["detail"]
    assert (await api.get(f"/participants/{pid}")).status == 404  # nothing was created
    assert (await api.get(f"/participants/{pid}/streaks")).status == 404

    daily = code("daily")
    await define(api, {"code": daily, "name": "D"})
    bad = await api.post(
        "/streaks/record", {"participant_id": pid, "streak_code": daily, "timestamp": "yesterday"}
    )
    assert bad.status == 422, bad
    assert any("timestamp" in err["loc"] for err in bad.body["detail"]), bad
    missing = await api.post("/streaks/record", {"participant_id": pid})
    assert missing.status == 422, missing
    assert (await api.get(f"/participants/{pid}")).status == 404


async def test_default_timestamp_and_deactivated_definition(api: Api, pid: str) -> None:
    daily = code("daily")
    made = await define(api, {"code": daily, "name": "D"})
    answer = await record(api, pid, daily, None)  # server time
    assert counts(answer) == (1, 1, True, False)
    deleted = await api.request("DELETE", f"/admin/streaks/{made['id']}", key=ADMIN_KEY)
    assert deleted.status == 200, deleted
    gone = await api.post("/streaks/record", {"participant_id": pid, "streak_code": daily})
    assert gone.status == 404, gone
    listed = (await api.get(f"/participants/{pid}/streaks")).body["streaks"]
    assert [(s["code"], s["current_count"], s["longest_count"]) for s in listed] == [(daily, 0, 1)]

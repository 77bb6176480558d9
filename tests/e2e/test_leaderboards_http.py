"""Leaderboards over HTTP against a real server (embedded log and Kafka): top N per period,
ties, ranks and percentiles, event leaderboards, history before the definition, 404s and 422s.

Only the first test awards points, so the points boards of this module's server hold exactly
its participants; the other tests rank events with names no other test uses.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN_KEY, GLOBEX_KEY, Api

# Expectations name the server's current day, week, month: never across a UTC midnight.
pytestmark = pytest.mark.usefixtures("clear_of_midnight")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def define(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    reply = await api.post("/admin/leaderboards", body, key=ADMIN_KEY)
    assert reply.status == 201, reply
    return reply.body  # type: ignore[no-any-return]


async def top(api: Api, code: str, **params: Any) -> dict[str, Any]:
    reply = await api.get(f"/leaderboards/{code}", params=params or None)
    assert reply.status == 200, reply
    return reply.body  # type: ignore[no-any-return]


async def rank(api: Api, code: str, pid: str, **params: Any) -> dict[str, Any]:
    reply = await api.get(f"/leaderboards/{code}/rank/{pid}", params=params or None)
    assert reply.status == 200, reply
    return reply.body  # type: ignore[no-any-return]


def order(body: dict[str, Any]) -> list[tuple[str, int]]:
    return [(e["participant_id"], e["score"]) for e in body["entries"]]


async def track(api: Api, pid: str, name: str, times: int = 1) -> None:
    for _ in range(times):
        reply = await api.post("/events", {"participant_id": pid, "event_name": name})
        assert reply.status in (200, 201), reply


async def test_points_top_n_ties_ranks_and_periods(api: Api) -> None:
    run = uuid.uuid4().hex[:8]
    # ids chosen so that id order and arrival order disagree on the tie
    first, second, high, low = (f"{x}-{run}" for x in ("tb", "ta", "hi", "lo"))
    code = unique("lb-points")
    made = await define(
        api, {"code": code, "name": "Weekly points", "metric": "points", "time_window": "weekly"}
    )
    assert made["code"] == code

    assert (await api.award(first, 300)).status == 200
    # Commit times have second resolution: wait until the clock has left the first commit's second.
    recorded = int(time.time())
    while int(time.time()) <= recorded:
        await asyncio.sleep(0.02)
    assert (await api.award(second, 300)).status == 200
    assert (await api.award(high, 100)).status == 200
    assert (await api.award(high, 400)).status == 200
    assert (await api.award(low, 50)).status == 200
    assert (await api.deduct(high, 450)).status == 200  # spending does not lower a score

    body = await top(api, code)
    assert set(body) == {
        "leaderboard_code",
        "period",
        "period_key",
        "entries",
        "total_participants",
    }
    assert body["leaderboard_code"] == code and body["period"] == "weekly"
    assert "-W" in body["period_key"]
    # 300 each: `first` got there a second earlier, so it ranks above `second` (id "ta" < "tb")
    assert order(body) == [(high, 500), (first, 300), (second, 300), (low, 50)]
    assert [e["rank"] for e in body["entries"]] == [1, 2, 3, 4]
    assert {e["change"] for e in body["entries"]} == {"new"}  # nobody scored last week
    assert set(body["entries"][0]) == {"rank", "participant_id", "score", "change"}
    assert body["total_participants"] == 4

    two = await top(api, code, limit=2)
    assert order(two) == [(high, 500), (first, 300)] and two["total_participants"] == 4
    for period in ("all_time", "yearly", "monthly", "daily"):
        other = await top(api, code, period=period, limit=100)
        assert other["period"] == period
        assert order(other) == order(body), period
    assert (await top(api, code, period="all_time"))["period_key"] == "all"

    mine = await rank(api, code, second)
    assert mine == {
        "participant_id": second,
        "rank": 3,
        "score": 300,
        "total_participants": 4,
        "percentile": 50.0,
        "leaderboard_code": code,
        "period": "weekly",
        "period_key": body["period_key"],
    }
    best = await rank(api, code, high, period="daily")
    assert (best["rank"], best["percentile"], best["period"]) == (1, 100.0, "daily")
    assert (await rank(api, code, low))["percentile"] == 25.0

    # a participant with no score has no rank
    idle = unique("idle")
    assert (await api.register(idle)).status in (200, 201)
    missing = await api.get(f"/leaderboards/{code}/rank/{idle}")
    assert missing.status == 404, missing
    assert (await api.get(f"/leaderboards/{code}/rank/{unique('ghost')}")).status == 404

    # a later award moves a participant up
    assert (await api.award(low, 1000)).status == 200
    moved = await top(api, code)
    assert order(moved)[0] == (low, 1050)
    assert (await rank(api, code, second))["rank"] == 4


async def test_event_leaderboards_rank_one_event_or_all_of_them(api: Api) -> None:
    login, buy = unique("login"), unique("buy")
    x, y, z = (unique(p) for p in ("x", "y", "z"))
    await track(api, x, login, 3)
    await track(api, y, login, 1)
    await track(api, y, buy, 2)
    # created after the events: a leaderboard ranks the history before it
    logins = unique("lb-logins")
    await define(api, {"code": logins, "name": "Logins", "metric": "events", "event_name": login})
    await track(api, z, login, 2)

    body = await top(api, logins)
    assert body["period"] == "all_time" and body["period_key"] == "all"  # no time_window given
    assert order(body) == [(x, 3), (z, 2), (y, 1)]
    assert body["total_participants"] == 3
    assert (await rank(api, logins, z))["rank"] == 2
    assert (await api.get(f"/leaderboards/{logins}/rank/{unique('nobody')}")).status == 404

    everything = unique("lb-events")
    await define(api, {"code": everything, "name": "Activity", "metric": "events"})
    assert (await rank(api, everything, y))["score"] == 3  # one login, two purchases


async def test_unknown_deleted_and_foreign_leaderboards_are_404(api: Api) -> None:
    code = unique("lb-gone")
    assert (await api.get(f"/leaderboards/{code}")).body == {
        "detail": f"Leaderboard not found: {code}"
    }
    made = await define(api, {"code": code, "name": "Soon gone", "metric": "points"})
    assert (await api.get(f"/leaderboards/{code}")).status == 200
    # another tenant cannot see it
    foreign = await api.get(f"/leaderboards/{code}", key=GLOBEX_KEY)
    assert foreign.status == 404 and foreign.body["detail"] == f"Leaderboard not found: {code}"
    deleted = await api.request("DELETE", f"/admin/leaderboards/{made['id']}", key=ADMIN_KEY)
    assert deleted.status == 200, deleted
    gone = await api.get(f"/leaderboards/{code}")
    assert gone.status == 404 and gone.body["detail"] == f"Leaderboard not found: {code}"
    assert (await api.get(f"/leaderboards/{code}/rank/{unique('p')}")).status == 404
    assert (await api.get(f"/leaderboards/{code}", key=None)).status == 401


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"period": "hourly"}, "period"),
        ({"period": ""}, "period"),
    ],
)
async def test_bad_limit_or_period_is_422(api: Api, params: dict[str, str], field: str) -> None:
    code = unique("lb-422")
    await define(api, {"code": code, "name": "Checks"})
    for path in (f"/leaderboards/{code}", f"/leaderboards/{code}/rank/{unique('p')}"):
        if field == "limit" and "rank" in path:
            continue  # the rank endpoint takes no limit
        reply = await api.get(path, params=params)
        assert reply.status == 422, reply
        assert reply.body["detail"][0]["loc"] == ["query", field], reply
    ok = await api.get(f"/leaderboards/{code}", params={"limit": "100", "period": "daily"})
    assert ok.status == 200, ok

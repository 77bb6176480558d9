"""The past over HTTP, on both logs: ``?as_of=`` across a rule change, and the history."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.e2e.conftest import ADMIN_KEY, Api


def code(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


async def next_second() -> None:
    """Return once the clock shows a later second than when called: commits decided after this
    get a later ``recorded_at`` (to the second) than every commit answered before it."""
    start = int(time.time())
    deadline = time.monotonic() + 3
    while int(time.time()) <= start:
        assert time.monotonic() < deadline, "the clock did not move"
        await asyncio.sleep(0.05)


async def admin(api: Api, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = await api.request(method, path, key=ADMIN_KEY, json_body=body)
    assert reply.status in (200, 201), reply
    return reply.body  # type: ignore[no-any-return]


async def history(api: Api, pid: str, **params: Any) -> dict[str, Any]:
    reply = await api.get(f"/participants/{pid}/history", key=ADMIN_KEY, params=params)
    assert reply.status == 200, reply
    return reply.body  # type: ignore[no-any-return]


def shifted(moment: str, hours: int) -> str:
    """``moment`` (``...Z``) written in the ``+HH:00`` offset: the same instant."""
    at = datetime.strptime(moment, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    local = at + timedelta(hours=hours)
    return local.strftime("%Y-%m-%dT%H:%M:%S") + f"+{hours:02d}:00"


async def test_as_of_answers_each_side_of_a_rule_change(api: Api, pid: str) -> None:
    event, tier = code("ev"), code("gold")
    rule = await admin(
        api,
        "POST",
        "/admin/rules",
        {"code": code("r"), "name": "R", "event_name": event, "points": 10},
    )
    gold = await admin(
        api,
        "POST",
        "/admin/tiers",
        {"code": tier, "name": "Gold", "level": 900, "criteria_config": {"min_points": 100}},
    )
    await next_second()
    assert (await api.award(pid, 50)).status == 200
    tracked = await api.post("/events", {"participant_id": pid, "event_name": event})
    assert tracked.status == 200 and tracked.body["points_awarded"] == 10, tracked
    before = (await history(api, pid))["commits"][0]["recorded_at"]
    live_before = (await api.get(f"/participants/{pid}")).body
    await next_second()
    # The rule now pays 30 and gold needs 80: the next event crosses into gold.
    await admin(api, "PATCH", f"/admin/rules/{rule['id']}", {"points": 30})
    await admin(api, "PATCH", f"/admin/tiers/{gold['id']}", {"criteria_config": {"min_points": 80}})
    await next_second()
    tracked = await api.post("/events", {"participant_id": pid, "event_name": event})
    assert tracked.status == 200 and tracked.body["points_awarded"] == 30, tracked
    after = (await history(api, pid))["commits"][0]["recorded_at"]
    assert after > before

    then = await api.get(f"/participants/{pid}", params={"as_of": before})
    assert then.status == 200, then
    assert then.body == live_before  # the very answer the live endpoint gave then
    assert then.body["points"] == {"balance": 60, "total_earned": 60, "total_spent": 0}
    assert then.body["tier"] is None
    state = await api.get(
        f"/participants/{pid}/state", params={"as_of": before, "include": "points,tier"}
    )
    assert state.status == 200 and state.body == {
        "participant_id": pid,
        "points": {"balance": 60, "total_earned": 60, "total_spent": 0},
        "tier": None,
    }, state
    # The same instant written with an offset answers the same.
    offset = await api.get(f"/participants/{pid}", params={"as_of": shifted(before, 2)})
    assert offset.body == then.body

    now = await api.get(f"/participants/{pid}", params={"as_of": after})
    assert now.body["points"]["balance"] == 90
    assert now.body["tier"]["code"] == tier and now.body["tier"]["achieved_at"] == after
    live = await api.get(f"/participants/{pid}")
    assert now.body == live.body
    live_state = await api.get(f"/participants/{pid}/state")
    now_state = await api.get(f"/participants/{pid}/state", params={"as_of": after})
    assert now_state.body == live_state.body


async def test_as_of_before_the_participant_existed_is_404(api: Api, pid: str) -> None:
    assert (await api.award(pid, 5)).status == 200
    created = (await history(api, pid))["commits"][0]["recorded_at"]
    earlier = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ") - timedelta(seconds=1)
    reply = await api.get(f"/participants/{pid}", params={"as_of": f"{earlier:%Y-%m-%dT%H:%M:%S}Z"})
    assert reply.status == 404, reply
    state = await api.get(f"/participants/{pid}/state", params={"as_of": "2001-01-01T00:00:00Z"})
    assert state.status == 404, state
    unknown = await api.get(f"/participants/{code('nobody')}", params={"as_of": created})
    assert unknown.status == 404, unknown
    bad = await api.get(f"/participants/{pid}", params={"as_of": "yesterday"})
    assert bad.status == 422 and bad.body["detail"][0]["loc"] == ["query", "as_of"], bad


async def test_history_pages_newest_first_with_causation_for_admin_keys_only(
    api: Api, pid: str
) -> None:
    assert (await api.award(pid, 7, idem=code("k"), reason="first")).status == 200
    assert (await api.deduct(pid, 2)).status == 200
    assert (await api.award(pid, 3)).status == 200
    first = await history(api, pid, page=1, page_size=2)
    second = await history(api, pid, page=2, page_size=2)
    assert first["total"] == second["total"] == 3
    assert [c["causation"]["command"] for c in first["commits"]] == [
        "points.award",
        "points.deduct",
    ]
    assert [c["version"] for c in first["commits"] + second["commits"]] == [3, 2, 1]
    oldest = second["commits"][0]
    assert oldest["status"] == "applied"
    assert oldest["causation"]["source"] == "http"
    assert oldest["causation"]["idempotency_key"].startswith("k_")
    assert oldest["causation"]["input"] == {
        "participant_id": pid,
        "amount": 7,
        "reason": "first",
        "metadata": {},
        "expires_at": None,  # AwardPoints' own fields, as the boundary left them
    }
    assert "fingerprint" not in oldest["causation"]
    assert [e["type"] for e in oldest["events"]] == ["ParticipantRegistered", "PointsAwarded"]
    offsets = [c["position"]["offset"] for c in first["commits"] + second["commits"]]
    assert offsets == sorted(offsets, reverse=True)
    assert (await api.get(f"/participants/{pid}/history")).status == 403  # a standard key
    missing = await api.get(f"/participants/{code('nobody')}/history", key=ADMIN_KEY)
    assert missing.status == 404

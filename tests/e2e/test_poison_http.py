"""The validation boundary end to end: bad values are 422 and write nothing, on both logs and on
PostgreSQL read models, and the service keeps serving writes afterwards."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ADMIN_KEY, API_KEYS, Api, Server, new_pid

WRITE_DEADLINE = 10.0  # GAMIFY_WRITE_TIMEOUT_MS's default: a write answers within it


def poison(pid: str) -> list[tuple[str, dict[str, Any], list[Any]]]:
    """Fault 1 and 4-5 of issue 10: each was accepted (or a 500) before the boundary."""
    return [
        (
            "/points/award",
            {"participant_id": pid, "amount": 1, "reason": "a\u0000b"},
            ["body", "reason"],
        ),
        ("/points/award", {"participant_id": pid, "amount": 1.0}, ["body", "amount"]),
        (
            "/points/award",
            {"participant_id": f"{pid}\u0000", "amount": 1},
            ["body", "participant_id"],
        ),
        (
            "/participants",
            {"participant_id": pid, "display_name": "J\u0000"},
            ["body", "display_name"],
        ),
        ("/events", {"participant_id": pid, "event_name": "e\u0000"}, ["body", "event_name"]),
        (
            "/events",
            {"participant_id": pid, "event_name": "e", "timestamp": "2030-01-01T00:00:00Z"},
            ["body", "timestamp"],
        ),
        (
            "/events",
            {"participant_id": pid, "event_name": "e", "timestamp": "0001-01-01T00:00:00+01:00"},
            ["body", "timestamp"],
        ),
        (
            "/events",
            {"participant_id": pid, "event_name": "e", "properties": {"t": 1e308}},
            ["body", "properties", "t"],
        ),
        (
            "/streaks/record",
            {"participant_id": pid, "streak_code": "daily", "timestamp": "9999-12-31T23:59:59Z"},
            ["body", "timestamp"],
        ),
    ]


async def refuse_all_then_write(api: Api) -> None:
    pid = new_pid("boundary")
    for path, body, loc in poison(pid):
        reply = await api.post(path, body)
        assert reply.status == 422, (path, reply)
        assert loc in [e["loc"] for e in reply.body["detail"]], reply
    bad_path = await api.get(f"/participants/{pid}%00x")
    assert bad_path.status == 422, bad_path
    for path, status in (
        ("/leaderboards/a%00b", 422),
        ("/leaderboards/a%00b/rank/p", 422),
        ("/admin/rules/a%00b", 404),
        ("/rewards/a%00b/claim", 422),
    ):
        method = "POST" if path.endswith("claim") else "GET"
        reply = await api.request(method, path, key=ADMIN_KEY, json_body={"participant_id": pid})
        assert reply.status == status, (path, reply)
    assert (await api.get(f"/participants/{pid}")).status == 404  # nothing was written
    await api.register(pid)
    events = await api.get(f"/participants/{pid}/events", params={"event_name": "a\u0000b"})
    assert events.status == 422, events
    started = time.monotonic()
    award = await api.award(pid, 5, reason="after the poison")
    assert award.status == 200, award
    assert time.monotonic() - started < WRITE_DEADLINE
    assert (award.body["amount"], award.body["new_balance"]) == (5, 5)
    assert (await api.points(pid))["balance"] == 5


async def test_poison_values_are_refused_and_writes_go_on(api: Api) -> None:
    await refuse_all_then_write(api)


async def test_a_bad_definition_is_refused_and_unknown_fields_are_not_stored(api: Api) -> None:
    code = new_pid("rule").replace("-", "_")
    bad = {
        "code": code,
        "name": "R",
        "event_name": "e",
        "points": 1,
        "conditions": {"t": {"in": 5}},
    }
    reply = await api.post("/admin/rules", bad, key=ADMIN_KEY)
    assert reply.status == 422, reply
    good = {
        "code": code,
        "name": "R",
        "event_name": "e",
        "points_property": "t",
        "multiplier": 0.57,
        "x": 1,
    }
    created = await api.post("/admin/rules", good, key=ADMIN_KEY)
    assert created.status == 201 and "x" not in created.body, created
    pid = new_pid("rule")
    tracked = await api.post(
        "/events", {"participant_id": pid, "event_name": "e", "properties": {"t": 100}}
    )
    assert tracked.status == 200 and tracked.body["points_awarded"] == 57, tracked
    await api.request("DELETE", f"/admin/rules/{created.body['id']}", key=ADMIN_KEY)


@pytest.fixture
def postgres_server(
    postgres_schema_url: str, tmp_path: Path, api_for: Callable[[Server], Api]
) -> Iterator[Server]:
    env = {
        "GAMIFY_API_KEYS": API_KEYS,
        "GAMIFY_DATABASE_URL": postgres_schema_url,
        "GAMIFY_LOG_LEVEL": os.environ.get("GAMIFY_E2E_LOG_LEVEL", "WARNING"),
    }
    server = Server("embedded", tmp_path / "data", env).start()
    yield server
    server.stop()


async def test_on_postgresql_the_nul_award_is_422_and_the_service_keeps_serving_writes(
    postgres_server: Server, api_for: Callable[[Server], Api]
) -> None:
    api = api_for(postgres_server)
    await refuse_all_then_write(api)
    async with api.session.get(f"{postgres_server.base_url}/readyz") as ready:
        assert ready.status == 200, await ready.text()

"""Bad input over HTTP: 422 naming the field, and nothing written (in-memory log, SQLite reads)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.adapters.memory_event_log import InMemoryEventLog
from services.api.app import create_app
from services.config import Settings, parse_api_keys

BASE = "/api/v1/gamify"
ACME = {"X-API-Key": "k-acme"}
ADMIN = {"X-API-Key": "k-admin"}


@pytest.fixture
def log() -> InMemoryEventLog:
    return InMemoryEventLog()


@pytest.fixture
async def client(tmp_path: Path, log: InMemoryEventLog) -> AsyncIterator[TestClient]:
    keys = parse_api_keys("acme:k-acme,acme:k-admin:admin")
    app = create_app(Settings(api_keys=keys, data_dir=tmp_path), event_log=log)
    async with TestClient(TestServer(app)) as c:
        yield c


async def post(client: TestClient, path: str, body: Any, headers: dict[str, str] = ACME) -> Any:
    resp = await client.post(f"{BASE}{path}", json=body, headers=headers)
    return resp.status, await resp.json()


def named(detail: Any) -> list[list[Any]]:
    return [e["loc"] for e in detail]


BAD_COMMANDS = [
    (
        "/points/award",
        {"participant_id": "p", "amount": 1, "reason": "a\u0000b"},
        ["body", "reason"],
    ),
    ("/points/award", {"participant_id": "p", "amount": 1.0}, ["body", "amount"]),
    ("/points/award", {"participant_id": "p\u0000", "amount": 1}, ["body", "participant_id"]),
    ("/points/award", {"participant_id": "p\u202e", "amount": 1}, ["body", "participant_id"]),
    (
        "/points/award",
        {"participant_id": "p", "amount": 1, "metadata": {"a": {"b": "\u0000"}}},
        ["body", "metadata", "a", "b"],
    ),
    (
        "/points/award",
        {"participant_id": "p", "amount": 1, "metadata": {"a": "x" * 9000}},
        ["body", "metadata"],
    ),
    ("/participants", {"participant_id": "p", "display_name": "J\u0000"}, ["body", "display_name"]),
    (
        "/participants",
        {"participant_id": "p", "attributes": {f"k{i}": i for i in range(101)}},
        ["body", "attributes"],
    ),
    ("/events", {"participant_id": "p", "event_name": "e\u0000"}, ["body", "event_name"]),
    (
        "/events",
        {"participant_id": "p", "event_name": "e", "timestamp": "0001-01-01T00:00:00+01:00"},
        ["body", "timestamp"],
    ),
    (
        "/events",
        {"participant_id": "p", "event_name": "e", "timestamp": "9999-12-31T23:59:59-01:00"},
        ["body", "timestamp"],
    ),
    (
        "/events",
        {"participant_id": "p", "event_name": "e", "timestamp": "2030-01-01T00:00:00Z"},
        ["body", "timestamp"],
    ),
    (
        "/events",
        {"participant_id": "p", "event_name": "e", "properties": {"total": 1e308}},
        ["body", "properties", "total"],
    ),
    (
        "/streaks/record",
        {"participant_id": "p", "streak_code": "daily", "timestamp": "9999-12-31T23:59:59Z"},
        ["body", "timestamp"],
    ),
    ("/badges/award", {"participant_id": "p", "badge_code": "b\u0000"}, ["body", "badge_code"]),
    ("/tiers/assign", {"participant_id": "p", "tier_code": "t\u202e"}, ["body", "tier_code"]),
]


@pytest.mark.parametrize(("path", "body", "loc"), BAD_COMMANDS)
async def test_a_bad_value_is_422_naming_the_field_and_writes_nothing(
    client: TestClient, log: InMemoryEventLog, path: str, body: dict[str, Any], loc: list[Any]
) -> None:
    status, answer = await post(client, path, body)
    assert status == 422, answer
    assert loc in named(answer["detail"])
    assert log.values == []
    pid = body["participant_id"].replace("\u0000", "").replace("\u202e", "") or "p"
    assert (await client.get(f"{BASE}/participants/{pid}", headers=ACME)).status == 404


async def test_an_integer_amount_is_answered_as_an_integer(client: TestClient) -> None:
    status, answer = await post(client, "/points/award", {"participant_id": "p", "amount": 1})
    assert status == 200
    assert type(answer["amount"]) is int and type(answer["new_balance"]) is int


@pytest.mark.parametrize("pid", ["a%00b", "a%E2%80%AEb", "a%1Fb"])
async def test_a_bad_path_participant_id_is_422_not_500(
    client: TestClient, log: InMemoryEventLog, pid: str
) -> None:
    for method, path in (
        ("GET", f"/participants/{pid}"),
        ("PATCH", f"/participants/{pid}"),
        ("GET", f"/participants/{pid}/points"),
    ):
        resp = await client.request(method, f"{BASE}{path}", headers=ACME, json={})
        assert resp.status == 422, (method, path)
        assert named((await resp.json())["detail"]) == [["path", "participant_id"]]
    assert log.values == []


async def test_a_bad_batch_item_fails_alone(client: TestClient) -> None:
    status, answer = await post(
        client,
        "/events/batch",
        {
            "events": [
                {"participant_id": "p", "event_name": "e"},
                {
                    "participant_id": "p",
                    "event_name": "e",
                    "timestamp": "0001-01-01T00:00:00+01:00",
                },
            ]
        },
    )
    assert status == 200
    assert [r["success"] for r in answer["results"]] == [True, False]
    assert named(answer["results"][1]["error"]) == [["events[1]", "timestamp"]]


async def test_a_timestamp_is_stored_as_utc_with_z(client: TestClient) -> None:
    await post(
        client,
        "/events",
        {"participant_id": "p", "event_name": "e", "timestamp": "2026-01-01T01:00:00+01:00"},
    )
    events = await (await client.get(f"{BASE}/participants/p/events", headers=ACME)).json()
    assert events["events"][0]["occurred_at"] == "2026-01-01T00:00:00Z"


# --------------------------------------------------------------------------------------------
# Admin definitions


BAD_DEFINITIONS = [
    (
        "challenges",
        {
            "code": "c",
            "name": "C",
            "objectives": [{"id": "o", "event_name": "e"}],
            "window": {
                "type": "fixed",
                "starts_at": "0001-01-01T00:00:00+01:00",
                "ends_at": "2027-01-01T00:00:00Z",
            },
        },
        ["body", "window", "starts_at"],
    ),
    (
        "challenges",
        {
            "code": "c",
            "name": "C",
            "objectives": [{"id": "o", "event_name": "e"}],
            "window": {
                "type": "fixed",
                "starts_at": "2027-01-01T00:00:00Z",
                "ends_at": "2026-01-01T00:00:00Z",
            },
        },
        ["body", "window", "ends_at"],
    ),
    (
        "challenges",
        {
            "code": "c",
            "name": "C",
            "objectives": [{"id": "o", "event_name": "e"}],
            "window": {"type": "rolling", "days": 1000000000},
        },
        ["body", "window", "days"],
    ),
    (
        "challenges",
        {
            "code": "c",
            "name": "C",
            "objectives": [{"id": "o", "event_name": "e", "conditions": {"plan": {"in": 5}}}],
        },
        ["body", "objectives", 0, "conditions", "plan"],
    ),
    (
        "rules",
        {"code": "r", "name": "R", "event_name": "e", "points_property": "t", "multiplier": 1e300},
        ["body", "multiplier"],
    ),
    (
        "rules",
        {
            "code": "r",
            "name": "R",
            "event_name": "e",
            "points": 1,
            "conditions": {"t": {"gt": "x"}},
        },
        ["body", "conditions", "t"],
    ),
    ("streaks", {"code": "s", "name": "S", "timezone": "Mars/Olympus"}, ["body", "timezone"]),
    (
        "tiers",
        {"code": "t", "name": "T\u0000", "level": 1, "criteria_config": {"min_points": 0}},
        ["body", "name"],
    ),
    (
        "rewards",
        {"code": "r", "name": "R", "type": "coupon", "expires_at": "2026-13-01T00:00:00Z"},
        ["body", "expires_at"],
    ),
]


@pytest.mark.parametrize(("resource", "body", "loc"), BAD_DEFINITIONS)
async def test_a_definition_the_engine_could_not_evaluate_is_422_and_not_stored(
    client: TestClient, resource: str, body: dict[str, Any], loc: list[Any]
) -> None:
    status, answer = await post(client, f"/admin/{resource}", body, ADMIN)
    assert status == 422, answer
    assert loc in named(answer["detail"])
    listed = await (await client.get(f"{BASE}/admin/{resource}", headers=ADMIN)).json()
    assert listed["total"] == 0


async def test_a_patch_that_breaks_a_window_is_422_and_changes_nothing(client: TestClient) -> None:
    window = {
        "type": "fixed",
        "starts_at": "2026-01-01T00:00:00Z",
        "ends_at": "2027-01-01T00:00:00Z",
    }
    body = {
        "code": "c",
        "name": "C",
        "objectives": [{"id": "o", "event_name": "e"}],
        "window": window,
    }
    status, created = await post(client, "/admin/challenges", body, ADMIN)
    assert status == 201
    resp = await client.patch(
        f"{BASE}/admin/challenges/{created['id']}",
        headers=ADMIN,
        json={"window": {**window, "starts_at": "2028-01-01T00:00:00Z"}},
    )
    assert resp.status == 422
    assert named((await resp.json())["detail"]) == [["body", "window", "ends_at"]]
    again = await (
        await client.get(f"{BASE}/admin/challenges/{created['id']}", headers=ADMIN)
    ).json()
    assert again["window"] == window


async def test_unknown_admin_fields_are_not_stored(client: TestClient) -> None:
    body = {"code": "r", "name": "R", "event_name": "e", "points": 5, "secret": "x", "window": 1}
    status, created = await post(client, "/admin/rules", body, ADMIN)
    assert status == 201
    assert "secret" not in created and "window" not in created
    found = await (await client.get(f"{BASE}/admin/rules/{created['id']}", headers=ADMIN)).json()
    assert "secret" not in found


@pytest.mark.parametrize(
    ("multiplier", "total", "points"), [(0.57, 100, 57), (0.29, 100, 29), (1.15, 100, 115)]
)
async def test_an_earn_rule_multiplies_in_exact_decimals(
    client: TestClient, multiplier: float, total: int, points: int
) -> None:
    rule = {
        "code": "r",
        "name": "R",
        "event_name": "buy",
        "points_property": "total",
        "multiplier": multiplier,
    }
    assert (await post(client, "/admin/rules", rule, ADMIN))[0] == 201
    status, answer = await post(
        client,
        "/events",
        {"participant_id": "p", "event_name": "buy", "properties": {"total": total}},
    )
    assert (status, answer["points_awarded"]) == (200, points)


async def test_patches_cannot_grow_the_attributes_past_the_profile_limit(
    client: TestClient,
) -> None:
    # Each request is within the per-request map limit (100 keys); the stored map as a whole is
    # bounded at 1,000 keys (services/participants/domain.py MAX_ATTRIBUTE_KEYS): 413, unchanged.
    first = {f"a{i}": i for i in range(100)}
    assert (await post(client, "/participants", {"participant_id": "p", "attributes": first}))[
        0
    ] == 201
    for batch in range(9):
        more = {f"b{batch}_{i}": i for i in range(100)}
        resp = await client.patch(f"{BASE}/participants/p", headers=ACME, json={"attributes": more})
        assert resp.status == 200, await resp.text()
    resp = await client.patch(
        f"{BASE}/participants/p", headers=ACME, json={"attributes": {"one_more": 1}}
    )
    assert resp.status == 413
    assert "attributes" in (await resp.json())["detail"]
    profile = await (await client.get(f"{BASE}/participants/p", headers=ACME)).json()
    assert len(profile["attributes"]) == 1000 and "one_more" not in profile["attributes"]

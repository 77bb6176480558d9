"""Inputs a hostile client tried on the merged service (issue 10): each kind answers 4xx or is
refused at the boundary, and nothing it sends changes what the engine decides."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.adapters.memory_event_log import InMemoryEventLog
from services.api.app import create_app
from services.config import ConfigError, Settings, parse_api_keys
from services.definitions.checks import problems
from services.participants.features.badges import criteria_met
from services.participants.features.events import json_equal, matches
from services.validation import parse_timestamp

BASE = "/api/v1/gamify"
ACME = {"X-API-Key": "k-acme"}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    settings = Settings(
        api_keys=parse_api_keys("acme:k-acme,acme:k-admin:admin"), data_dir=tmp_path
    )
    async with TestClient(TestServer(create_app(settings, event_log=InMemoryEventLog()))) as c:
        yield c


async def raw_status(client: TestClient, request: bytes) -> bytes:
    """The status line the server answers to ``request``, sent byte for byte."""
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()


@pytest.mark.parametrize("header", [b"X-API-Key: \xff\xfe", b"Authorization: Bearer \x80abc"])
async def test_a_key_that_is_not_utf8_is_an_unknown_key_not_a_server_error(
    client: TestClient, header: bytes
) -> None:
    request = b"GET " + BASE.encode() + b"/participants/u1 HTTP/1.1\r\nHost: x\r\n"
    status = await raw_status(client, request + header + b"\r\nConnection: close\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 401"), status


@pytest.mark.parametrize(
    ("conditions", "properties", "expected"),
    [
        ({"n": 1}, {"n": True}, False),  # true is not 1
        ({"n": 0}, {"n": False}, False),
        ({"n": {"in": [0]}}, {"n": False}, False),
        ({"n": {"eq": True}}, {"n": 1}, False),
        ({"n": {"ne": 1}}, {"n": True}, True),
        ({"n": {"eq": True}}, {"n": True}, True),
        ({"n": 1}, {"n": 1.0}, True),  # the same JSON number
        ({"n": {"in": [1, 2]}}, {"n": 2.0}, True),
        ({"n": {"eq": {"a": [1, True]}}}, {"n": {"a": [1.0, True]}}, True),
        ({"n": {"eq": {"a": [1, True]}}}, {"n": {"a": [True, 1]}}, False),
    ],
)
def test_conditions_compare_json_values_where_a_boolean_is_never_a_number(
    conditions: dict, properties: dict, expected: bool
) -> None:
    assert matches(conditions, properties) is expected


def test_json_equality_is_symmetric_on_booleans_and_numbers() -> None:
    for a, b in ((True, 1), (False, 0), (1, True), (0.0, False)):
        assert not json_equal(a, b)
    assert json_equal(3, 3.0) and json_equal("x", "x") and not json_equal("1", 1)


@pytest.mark.parametrize(
    "criteria",
    [{"event_count": 3}, {"streak_length": 5}, {"event_count": 2, "streak_code": "daily"}],
)
def test_a_badge_count_without_what_it_counts_is_refused_and_never_holds(criteria: dict) -> None:
    assert problems("badge", {"code": "b", "name": "b", "criteria_config": criteria})
    assert not criteria_met({"criteria_config": criteria}, {}, 1_000)


def test_complete_badge_criteria_pass_the_checks() -> None:
    criteria = {"event_name": "buy", "event_count": 2, "streak_code": "daily", "streak_length": 3}
    assert problems("badge", {"code": "b", "name": "b", "criteria_config": criteria}) == []


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules", "right/UTC", "posix/UTC"])
def test_host_dependent_time_zones_are_refused_for_streaks(zone: str) -> None:
    assert problems("streak", {"code": "s", "name": "s", "timezone": zone})


def test_a_canonical_time_zone_is_accepted() -> None:
    assert problems("streak", {"code": "s", "name": "s", "timezone": "Europe/Paris"}) == []


@pytest.mark.parametrize(
    "raw", ["٢٠٢٦-01-01T00:00:00Z", "２０２６-01-01T00:00:00Z", "2026-0１-01T00:00:00Z"]
)
def test_timestamps_take_ascii_digits_only(raw: str) -> None:
    assert parse_timestamp(raw) is None
    assert parse_timestamp("2026-01-01T00:00:00Z") is not None


def test_the_same_key_under_two_tenants_is_a_configuration_error_naming_positions() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_api_keys("t1:k1,t2:k1")
    assert "items 1 and 2" in str(caught.value) and "k1" not in str(caught.value)


async def test_a_boolean_query_value_that_is_neither_true_nor_false_is_422(
    client: TestClient,
) -> None:
    await client.post(
        f"{BASE}/points/award", headers=ACME, json={"participant_id": "p", "amount": 1}
    )
    resp = await client.get(f"{BASE}/participants/p/badges?earned_only=maybe", headers=ACME)
    assert resp.status == 422
    assert (await resp.json())["detail"][0]["loc"] == ["query", "earned_only"]
    assert (await client.get(f"{BASE}/participants/p/badges?earned_only=TRUE", headers=ACME)).ok


async def test_an_include_of_only_commas_means_every_section(client: TestClient) -> None:
    await client.post(
        f"{BASE}/points/award", headers=ACME, json={"participant_id": "p", "amount": 1}
    )
    everything = await (await client.get(f"{BASE}/participants/p/state", headers=ACME)).json()
    commas = await client.get(f"{BASE}/participants/p/state?include=,,", headers=ACME)
    assert commas.status == 200 and set(await commas.json()) == set(everything)


async def test_a_batch_item_that_is_not_an_object_is_located_like_the_other_item_errors(
    client: TestClient,
) -> None:
    resp = await client.post(f"{BASE}/events/batch", headers=ACME, json={"events": [7]})
    assert resp.status == 200
    (result,) = (await resp.json())["results"]
    assert result["status_code"] == 422 and result["error"][0]["loc"] == ["events[0]"]


@pytest.mark.parametrize(
    ("body", "field", "bidi"),
    [
        ({"participant_id": "p", "amount": 1, "reason": "a\u0000b"}, "reason", False),
        ({"participant_id": "p\u202e", "amount": 1}, "participant_id", True),
    ],
)
async def test_a_control_character_is_named_as_such_not_as_a_regular_expression(
    client: TestClient, body: dict, field: str, bidi: bool
) -> None:
    resp = await client.post(f"{BASE}/points/award", headers=ACME, json=body)
    assert resp.status == 422
    (error,) = (await resp.json())["detail"]
    assert error["loc"] == ["body", field]
    assert error["msg"].startswith("must not contain control characters")
    assert ("bidi" in error["msg"]) is bidi

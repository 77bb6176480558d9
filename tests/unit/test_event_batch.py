"""POST /events/batch answers per item, always: one item's failure never fails the batch.

Before, an item whose timestamp overflowed (``0001-01-01T00:00:00+01:00``) answered 500 and one
whose idempotency_key was used for another command answered 409, while the valid items of the
same batch were committed: a client retrying the "failed" batch recorded them twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from schemas.events import Commit
from schemas.log import LogPosition
from services.adapters.memory_event_log import InMemoryEventLog
from services.api.app import create_app
from services.config import Settings, parse_api_keys

BASE = "/api/v1/gamify"
ACME = {"X-API-Key": "k-acme"}


class FaultyLog(InMemoryEventLog):
    """A log whose appends fail for participant ``boom`` and never project for ``stuck``."""

    async def append(self, commit: Commit) -> LogPosition:
        if commit.participant_id == "boom":
            raise ConnectionError("the broker went away")
        if commit.participant_id == "stuck":
            return LogPosition(0, 10**9)  # beyond anything the projector will reach
        return await super().append(commit)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    settings = Settings(
        api_keys=parse_api_keys("acme:k-acme"), data_dir=tmp_path, write_timeout=0.3
    )
    async with TestClient(TestServer(create_app(settings, event_log=FaultyLog()))) as c:
        yield c


async def post_batch(client: TestClient, items: list[Any]) -> dict[str, Any]:
    resp = await client.post(f"{BASE}/events/batch", headers=ACME, json={"events": items})
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def history_total(client: TestClient, pid: str) -> int:
    resp = await client.get(f"{BASE}/participants/{pid}/events", headers=ACME)
    return int((await resp.json())["total"]) if resp.status == 200 else 0


MIXED: list[Any] = [
    {"participant_id": "p1", "event_name": "login", "idempotency_key": "b-ok"},
    {"participant_id": "p1", "event_name": "login", "timestamp": "0001-01-01T00:00:00+01:00"},
    {"participant_id": "p1", "event_name": "login", "idempotency_key": "award-1"},  # reused
    {"participant_id": "p2", "event_name": ""},  # breaks the schema
    "not an object",
    {"participant_id": "p3", "event_name": "login", "timestamp": "yesterday"},
    {"participant_id": "boom", "event_name": "login", "idempotency_key": "b-boom"},
    {"participant_id": "stuck", "event_name": "login", "idempotency_key": "b-stuck"},
    {"participant_id": "p4", "event_name": "login", "idempotency_key": "b-ok-2"},
]


async def test_a_mixed_batch_answers_200_with_each_item_s_own_result(client: TestClient) -> None:
    award = {"participant_id": "p1", "amount": 5}
    headers = {**ACME, "Idempotency-Key": "award-1"}
    assert (await client.post(f"{BASE}/points/award", headers=headers, json=award)).status == 200

    body = await post_batch(client, MIXED)
    results = body["results"]
    assert [r["index"] for r in results] == list(range(len(MIXED)))
    assert [r["success"] for r in results] == [True] + [False] * 7 + [True]
    assert (body["total"], body["succeeded"], body["failed"]) == (9, 2, 7)
    assert results[0]["status"] == "processed" and results[0]["participant_id"] == "p1"
    failed = {r["index"]: r for r in results if not r["success"]}
    assert failed[1]["participant_id"] == "p1" and failed[1]["status_code"] in (422, 503)
    assert failed[2]["status_code"] == 409 and "award-1" in failed[2]["error"]
    assert failed[3]["status_code"] == 422 and failed[3]["error"][0]["loc"][0] == "events[3]"
    assert failed[4]["status_code"] == 422 and "participant_id" not in failed[4]
    assert failed[5]["status_code"] == 422 and isinstance(failed[5]["error"], list)
    assert failed[6]["status_code"] == 503 and "same idempotency_key" in failed[6]["error"]
    assert failed[7]["status_code"] == 503 and "same idempotency_key" in failed[7]["error"]
    assert await history_total(client, "p1") == 1
    assert await history_total(client, "p4") == 1


async def test_retrying_the_same_batch_with_the_same_keys_records_nothing_twice(
    client: TestClient,
) -> None:
    award = {"participant_id": "p1", "amount": 5}
    headers = {**ACME, "Idempotency-Key": "award-1"}
    assert (await client.post(f"{BASE}/points/award", headers=headers, json=award)).status == 200
    first = await post_batch(client, MIXED)
    again = await post_batch(client, MIXED)
    for before, after in zip(first["results"], again["results"], strict=True):
        assert after["success"] == before["success"]
        if before["success"]:  # the original answer, replayed
            assert (after["event_id"], after["fact_id"]) == (before["event_id"], before["fact_id"])
    assert await history_total(client, "p1") == 1
    assert await history_total(client, "p4") == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [({"events": []}, 422), ({"events": [{}] * 101}, 422), ({"other": 1}, 422), ([1], 400)],
    ids=["empty", "too-many", "no-events", "not-an-object"],
)
async def test_a_request_that_is_not_a_batch_is_refused_as_a_whole(
    client: TestClient, body: Any, status: int
) -> None:
    resp = await client.post(f"{BASE}/events/batch", headers=ACME, json=body)
    assert resp.status == status
    assert "detail" in await resp.json()
    assert await history_total(client, "p1") == 0

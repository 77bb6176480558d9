"""The log grows with what clients send, not with history: profile updates record only changes.

Before ParticipantProfileUpdated v3 every PATCH of attributes wrote the whole merged map, so N
PATCHes of K new keys each wrote about N²·K/2 keys (60 × 10,000 keys: 3 MB sent, 443 MB of log).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from schemas import codec
from services.adapters.memory_event_log import InMemoryEventLog
from services.api.app import create_app
from services.api.keys import data_keys_key
from services.config import Settings, parse_api_keys
from services.participants.domain import MAX_ATTRIBUTE_KEYS

BASE = "/api/v1/gamify"
ACME = {"X-API-Key": "k-acme"}
N, K = 30, 30  # PATCHes, new keys in each (900 keys: under MAX_ATTRIBUTE_KEYS)
BYTES_PER_KEY = 64  # generous: a key of ~10 characters and a small integer take ~16 bytes
COMMIT_OVERHEAD = 1_000  # envelope: ids, causation, timestamps


@pytest.fixture
async def log() -> InMemoryEventLog:
    return InMemoryEventLog()


@pytest.fixture
async def client(tmp_path: Path, log: InMemoryEventLog) -> AsyncIterator[TestClient]:
    settings = Settings(api_keys=parse_api_keys("acme:k-acme"), data_dir=tmp_path)
    async with TestClient(TestServer(create_app(settings, event_log=log))) as c:
        yield c


def opened(client: TestClient, value: bytes) -> list[dict[str, Any]]:
    """The events of a log record, its sealed personal fields opened (schemas/sealing.py)."""
    commit = codec.decode(value, client.app[data_keys_key])
    return [codec.encode_event(e) for e in commit.events]


def keys(batch: int, k: int = K) -> dict[str, int]:
    return {f"k{batch:03d}_{j:03d}": j for j in range(k)}


async def patch(client: TestClient, attributes: dict[str, object]) -> None:
    resp = await client.patch(
        f"{BASE}/participants/x", headers=ACME, json={"attributes": attributes}
    )
    assert resp.status == 200, await resp.text()


async def test_n_patches_of_k_new_keys_write_a_log_linear_in_n_times_k(
    client: TestClient, log: InMemoryEventLog
) -> None:
    resp = await client.post(f"{BASE}/participants", headers=ACME, json={"participant_id": "x"})
    assert resp.status == 201
    start = len(log.values)
    for batch in range(N):
        await patch(client, keys(batch))
    sizes = [len(v) for v in log.values[start:]]
    assert len(sizes) == N
    assert sum(sizes) <= N * (K * BYTES_PER_KEY + COMMIT_OVERHEAD), sizes
    assert max(sizes) <= 2 * min(sizes), "the last PATCH wrote as much as the first"
    profile = await (await client.get(f"{BASE}/participants/x", headers=ACME)).json()
    assert len(profile["attributes"]) == N * K  # the read model still holds every key

    # One key changed on the N·K-key map: one key in the log; a no-op PATCH writes nothing.
    await patch(client, {"k000_001": "changed", "k000_002": None, "k000_003": 3})
    [last] = log.values[start + N :]
    [event] = opened(client, last)
    assert event["data"] == {
        "changes": {},
        "attributes_replaced": False,
        "attributes_set": {"k000_001": "changed"},
        "attributes_removed": ["k000_002"],
    }
    assert len(last) < COMMIT_OVERHEAD
    await patch(client, {"k000_003": 3, "k000_002": None})
    assert len(log.values) == start + N + 1


async def test_re_registering_with_null_attributes_clears_them_in_one_short_event(
    client: TestClient, log: InMemoryEventLog
) -> None:
    body = {"participant_id": "x", "attributes": keys(0, 50) | keys(1, 50)}
    assert (await client.post(f"{BASE}/participants", headers=ACME, json=body)).status == 201
    again = {"participant_id": "x", "attributes": None}
    resp = await client.post(f"{BASE}/participants", headers=ACME, json=again)
    assert (await resp.json())["attributes"] == {}
    [event] = opened(client, log.values[-1])
    assert event["data"]["attributes_replaced"] is True
    assert event["data"]["attributes_set"] == {} and event["data"]["attributes_removed"] == []


async def test_a_patch_that_would_grow_the_attributes_past_the_bound_is_refused_with_413(
    client: TestClient, log: InMemoryEventLog
) -> None:
    resp = await client.post(f"{BASE}/participants", headers=ACME, json={"participant_id": "x"})
    assert resp.status == 201
    for batch in range(MAX_ATTRIBUTE_KEYS // 100):
        await patch(client, keys(batch, 100))
    written = len(log.values)
    resp = await client.patch(
        f"{BASE}/participants/x", headers=ACME, json={"attributes": {"one_more": 1}}
    )
    assert resp.status == 413
    assert (await resp.json())["detail"].startswith("attributes: a participant holds at most")
    assert len(log.values) == written
    await patch(client, {"k000_000": None, "one_more": 1})  # a swap keeps the count: accepted
    assert len(log.values) == written + 1

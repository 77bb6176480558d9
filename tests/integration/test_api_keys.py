"""API keys issued, used, listed and revoked over HTTP: two app instances on one log and store.

Instance ``a`` runs the API and the projector; ``b`` runs only the API (a split deployment), on
the same embedded log and read-model database (SQLite and PostgreSQL).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.api.app import create_app
from services.config import Settings, parse_api_keys
from services.rate_limit_config import RateLimitSettings

BASE = "/api/v1/gamify"
KEYS = f"{BASE}/admin/api-keys"
ADMIN = {"X-API-Key": "k-admin"}
GLOBEX_ADMIN = {"X-API-Key": "k-globex"}


@pytest.fixture
async def apps(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[TestClient, TestClient]]:
    settings = Settings(
        api_keys=parse_api_keys("acme:k-admin:admin,globex:k-globex:admin"),
        data_dir=tmp_path,
        database_url=database_url,
        rate_limits=RateLimitSettings(per_tenant=None),
    )
    a = TestClient(TestServer(create_app(settings)))
    await a.start_server()
    b = TestClient(TestServer(create_app(settings, roles={"api"})))
    await b.start_server()
    yield a, b
    await b.close()
    await a.close()


def key_of(value: str) -> dict[str, str]:
    return {"X-API-Key": value}


async def issue(client: TestClient, **body: Any) -> dict[str, Any]:
    resp = await client.post(KEYS, json=body, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    return await resp.json()  # type: ignore[no-any-return]


async def test_a_key_is_issued_used_listed_and_revoked_in_every_instance(
    apps: tuple[TestClient, TestClient], tmp_path: Path
) -> None:
    a, b = apps
    issued = await issue(b, name="Backend", scope="standard")
    key = issued["key"]
    assert key.startswith("gmf_live_") and len(key) == len("gmf_live_") + 32
    assert set(issued) == {"id", "key", "prefix", "name", "scope", "rate_limit", "created_at"}
    assert issued["prefix"] == key[:13] and issued["scope"] == "standard"

    for client in (a, b):
        award = await client.post(
            f"{BASE}/points/award",
            json={"participant_id": "p1", "amount": 5, "reason": "signup"},
            headers=key_of(key),
        )
        assert award.status in (200, 201), await award.text()
    assert (await a.get(f"{BASE}/participants/p1/points", headers=key_of(key))).status == 200
    assert (await b.get(KEYS, headers=key_of(key))).status == 403  # standard: no /admin

    listed = await a.get(KEYS, headers=ADMIN)
    text = await listed.text()
    assert listed.status == 200 and key not in text and key[13:] not in text
    [shown] = (await listed.json())["api_keys"]
    assert set(shown) == {
        "id", "prefix", "name", "scope", "rate_limit", "is_active", "created_at",
        "last_used_at", "revoked_at",
    }  # fmt: skip
    assert shown["id"] == issued["id"] and shown["is_active"] is True
    other_tenant = await (await a.get(KEYS, headers=GLOBEX_ADMIN)).json()
    assert other_tenant["api_keys"] == [] and other_tenant["total"] == 0

    revoked = await b.delete(f"{KEYS}/{issued['id']}", headers=ADMIN)
    assert revoked.status == 200
    body = await revoked.json()
    assert body["is_active"] is False and body["revoked_at"] is not None
    for client in (a, b):  # the very next request, in either instance
        refused = await client.get(f"{BASE}/participants/p1", headers=key_of(key))
        assert refused.status == 401 and await refused.json() == {"detail": "Invalid API key"}
    again = await a.delete(f"{KEYS}/{issued['id']}", headers=ADMIN)
    assert again.status == 200 and (await again.json())["revoked_at"] == body["revoked_at"]

    log = (tmp_path / "log.db").read_bytes()
    assert key.encode() not in log and key[13:].encode() not in log


async def test_a_revoke_made_through_the_projecting_instance_is_refused_by_the_other(
    apps: tuple[TestClient, TestClient],
) -> None:
    a, b = apps
    issued = await issue(a, name="Worker")
    assert (await b.get(f"{BASE}/participants/x", headers=key_of(issued["key"]))).status == 404
    assert (await a.delete(f"{KEYS}/{issued['id']}", headers=ADMIN)).status == 200
    assert (await b.get(f"{BASE}/participants/x", headers=key_of(issued["key"]))).status == 401


async def test_an_admin_key_reaches_admin_endpoints_and_can_issue_keys(
    apps: tuple[TestClient, TestClient],
) -> None:
    a, _ = apps
    admin = await issue(a, name="Ops", scope="admin")
    assert (await a.get(f"{BASE}/admin/badges", headers=key_of(admin["key"]))).status == 200
    resp = await a.post(KEYS, json={"name": "by ops"}, headers=key_of(admin["key"]))
    assert resp.status == 201 and (await resp.json())["scope"] == "standard"


async def test_last_use_is_recorded_outside_the_log(apps: tuple[TestClient, TestClient]) -> None:
    a, b = apps
    issued = await issue(a, name="Mobile")
    assert (await b.get(f"{BASE}/participants/x", headers=key_of(issued["key"]))).status == 404
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        [shown] = (await (await a.get(KEYS, headers=ADMIN)).json())["api_keys"]
        if shown["last_used_at"] is not None:
            break
        assert asyncio.get_running_loop().time() < deadline, "last_used_at never set"
        await asyncio.sleep(0.05)
    assert shown["last_used_at"] >= issued["created_at"]


async def test_a_key_with_its_own_rate_limit(apps: tuple[TestClient, TestClient]) -> None:
    a, b = apps
    issued = await issue(a, name="Batch", rate_limit=2)
    assert issued["rate_limit"] == 2
    first = await a.get(f"{BASE}/participants/x", headers=key_of(issued["key"]))
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert (await a.get(f"{BASE}/participants/x", headers=key_of(issued["key"]))).status == 404
    assert (await a.get(f"{BASE}/participants/x", headers=key_of(issued["key"]))).status == 429


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 422),
        ({"name": "x", "scope": "root"}, 422),
        ({"name": "x", "rate_limit": 0}, 422),
        ({"name": "bad\u0000name"}, 422),
        ({"name": "x", "key": "chosen"}, 422),
    ],
)
async def test_bad_requests_are_refused(
    apps: tuple[TestClient, TestClient], body: dict[str, Any], status: int
) -> None:
    a, _ = apps
    resp = await a.post(KEYS, json=body, headers=ADMIN)
    assert resp.status == status
    assert "detail" in await resp.json()


async def test_unknown_and_foreign_keys_are_404(apps: tuple[TestClient, TestClient]) -> None:
    a, _ = apps
    issued = await issue(a, name="Acme only")
    assert (await a.delete(f"{KEYS}/nope", headers=ADMIN)).status == 404
    assert (await a.delete(f"{KEYS}/{issued['id']}", headers=GLOBEX_ADMIN)).status == 404
    assert (await a.get(f"{BASE}/participants/x", headers=key_of(issued["key"]))).status == 404


async def listed(client: TestClient) -> dict[str, dict[str, Any]]:
    body = await (await client.get(KEYS, headers=ADMIN)).json()
    return {k["id"]: k for k in body["api_keys"]}


async def test_a_replay_rebuilds_the_keys_and_keeps_their_last_use(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.cli import build_parser, replay_command

    settings = Settings(
        api_keys=parse_api_keys("acme:k-admin:admin"), data_dir=tmp_path, database_url=database_url
    )
    async with TestClient(TestServer(create_app(settings))) as client:
        kept, gone = await issue(client, name="Kept"), await issue(client, name="Gone")
        assert (
            await client.get(f"{BASE}/participants/x", headers=key_of(kept["key"]))
        ).status == 404
        assert (await client.delete(f"{KEYS}/{gone['id']}", headers=ADMIN)).status == 200
        deadline = asyncio.get_running_loop().time() + 10
        while not (await listed(client))[kept["id"]]["last_used_at"]:
            assert asyncio.get_running_loop().time() < deadline, "last_used_at never set"
            await asyncio.sleep(0.05)
        before = await (await client.get(KEYS, headers=ADMIN)).json()

    for argv in (["replay", "--verify"], ["replay"]):
        code = await asyncio.to_thread(replay_command, settings, build_parser().parse_args(argv))
        assert code == 0, capsys.readouterr()

    async with TestClient(TestServer(create_app(settings))) as client:
        assert await (await client.get(KEYS, headers=ADMIN)).json() == before
        assert (
            await client.get(f"{BASE}/participants/x", headers=key_of(kept["key"]))
        ).status == 404
        assert (
            await client.get(f"{BASE}/participants/x", headers=key_of(gone["key"]))
        ).status == 401

"""Rate limits over a real app (in-memory counters): headers, 429, which requests count where."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services.adapters.memory_event_log import InMemoryEventLog
from services.api.app import create_app
from services.api.auth import Principal
from services.api.rate_limits import applicable
from services.config import Settings, parse_api_keys
from services.rate_limit_config import Rate, RateLimitSettings

BASE = "/api/v1/gamify"
KEYS = "acme:k-acme,acme:k-acme-2,acme:k-admin:admin,globex:k-globex"
ACME, ACME_2, ADMIN = {"X-API-Key": "k-acme"}, {"X-API-Key": "k-acme-2"}, {"X-API-Key": "k-admin"}
HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def settings(tmp_path: Path, limits: RateLimitSettings) -> Settings:
    return Settings(api_keys=parse_api_keys(KEYS), data_dir=tmp_path, rate_limits=limits)


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    clients: list[TestClient] = []

    async def make(limits: RateLimitSettings) -> TestClient:
        app = create_app(
            settings(tmp_path / str(len(clients)), limits), event_log=InMemoryEventLog()
        )
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def test_which_limits_a_request_counts_against() -> None:
    limits = RateLimitSettings()
    who = Principal("acme", False, "k1")
    names = lambda method, path: [a.name for a in applicable(limits, who, method, path)]  # noqa: E731
    assert names("GET", f"{BASE}/participants/p1") == ["key", "tenant"]
    assert names("POST", f"{BASE}/events") == ["burst", "key", "tenant"]
    assert names("POST", f"{BASE}/events/batch") == ["burst", "key", "tenant"]
    assert names("GET", f"{BASE}/participants/p1/events") == ["key", "tenant"]
    assert names("GET", f"{BASE}/admin/badges") == ["key"]
    own = applicable(limits, Principal("acme", False, "k2", rate_limit=7), "GET", f"{BASE}/x")
    assert own[0].rate == Rate(7, 60) and own[0].counter == "key:k2"
    off = RateLimitSettings(per_key=None, per_tenant=None, ingest_burst=None)
    assert applicable(off, who, "POST", f"{BASE}/events") == []


async def test_every_counted_answer_carries_the_headers_and_the_limit_answers_429(
    make_client: Callable[..., object],
) -> None:
    limits = RateLimitSettings(per_key=Rate(3, 60), per_tenant=None)
    client: TestClient = await make_client(limits)  # type: ignore[misc]
    started = time.time()
    remaining = []
    for _ in range(3):
        resp = await client.get(f"{BASE}/participants/nobody", headers=ACME)
        assert resp.status == 404  # errors carry the headers too
        assert resp.headers["X-RateLimit-Limit"] == "3"
        remaining.append(int(resp.headers["X-RateLimit-Remaining"]))
        reset = int(resp.headers["X-RateLimit-Reset"])
        assert started <= reset <= started + 61
    assert remaining == [2, 1, 0]
    refused = await client.get(f"{BASE}/participants/nobody", headers=ACME)
    assert refused.status == 429
    body = await refused.json()
    assert set(body) == {"detail"} and "Rate limit exceeded" in body["detail"]
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(refused.headers["Retry-After"]) <= 61
    other = await client.get(f"{BASE}/participants/nobody", headers=ACME_2)
    assert other.status == 404 and other.headers["X-RateLimit-Remaining"] == "2"


async def test_the_tenant_limit_is_shared_by_its_keys_and_spares_admin_and_other_tenants(
    make_client: Callable[..., object],
) -> None:
    limits = RateLimitSettings(per_key=Rate(100, 60), per_tenant=Rate(2, 60))
    client: TestClient = await make_client(limits)  # type: ignore[misc]
    assert (await client.get(f"{BASE}/participants/a", headers=ACME)).status == 404
    assert (await client.get(f"{BASE}/participants/a", headers=ACME_2)).status == 404
    refused = await client.get(f"{BASE}/participants/a", headers=ACME)
    assert refused.status == 429 and refused.headers["X-RateLimit-Limit"] == "2"
    admin = await client.get(f"{BASE}/admin/badges", headers=ADMIN)
    assert admin.status == 200 and admin.headers["X-RateLimit-Limit"] == "100"
    globex = await client.get(f"{BASE}/participants/a", headers={"X-API-Key": "k-globex"})
    assert globex.status == 404 and globex.headers["X-RateLimit-Remaining"] == "1"


async def test_event_ingestion_has_a_burst_limit(make_client: Callable[..., object]) -> None:
    limits = RateLimitSettings(per_key=Rate(100, 60), per_tenant=None, ingest_burst=Rate(2, 30))
    client: TestClient = await make_client(limits)  # type: ignore[misc]
    event = {"participant_id": "p1", "event_name": "login"}
    statuses = [(await client.post(f"{BASE}/events", json=event, headers=ACME)).status]
    statuses.append((await client.post(f"{BASE}/events", json=event, headers=ACME)).status)
    refused = await client.post(f"{BASE}/events", json=event, headers=ACME)
    assert refused.status == 429 and "burst" in (await refused.json())["detail"]
    assert statuses[0] < 300 and statuses[1] < 300
    read = await client.get(f"{BASE}/participants/p1", headers=ACME)
    assert read.status == 200 and read.headers["X-RateLimit-Limit"] == "100"


async def test_public_and_unauthenticated_answers_count_against_nothing(
    make_client: Callable[..., object],
) -> None:
    limits = RateLimitSettings(per_key=Rate(1, 60), per_tenant=Rate(1, 60))
    client: TestClient = await make_client(limits)  # type: ignore[misc]
    for path, headers, status in [
        ("/healthz", {}, 200),
        ("/metrics", {}, 200),
        (f"{BASE}/openapi.json", {}, 200),
        (f"{BASE}/participants/a", {}, 401),
        (f"{BASE}/participants/a", {"X-API-Key": "wrong"}, 401),
        (f"{BASE}/no-such-route", ACME, 404),
    ]:
        for _ in range(3):
            resp = await client.get(path, headers=headers)
            assert resp.status == status, path
            assert not any(h in resp.headers for h in HEADERS), path
    assert (await client.get(f"{BASE}/participants/a", headers=ACME)).status == 404
    assert (await client.get(f"{BASE}/participants/a", headers=ACME)).status == 429


async def test_limits_off_send_no_headers(make_client: Callable[..., object]) -> None:
    limits = RateLimitSettings(per_key=None, per_tenant=None, ingest_burst=None)
    client: TestClient = await make_client(limits)  # type: ignore[misc]
    resp = await client.get(f"{BASE}/participants/a", headers=ACME)
    assert resp.status == 404 and "X-RateLimit-Limit" not in resp.headers


def test_settings_read_the_environment() -> None:
    s = Settings.from_env(
        {
            "GAMIFY_RATE_LIMIT_PER_KEY": "5/10",
            "GAMIFY_RATE_LIMIT_PER_TENANT": "off",
            "GAMIFY_REDIS_URL": "redis://127.0.0.1:6379/2",
        }
    ).rate_limits
    assert (s.per_key, s.per_tenant, s.ingest_burst) == (Rate(5, 10), None, Rate(100, 1))
    assert s.redis_url == "redis://127.0.0.1:6379/2"
    assert Settings.from_env({}).rate_limits == RateLimitSettings()
    assert RateLimitSettings() == RateLimitSettings(Rate(1000, 60), Rate(200, 60), Rate(100, 1))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GAMIFY_RATE_LIMIT_PER_KEY", "1000"),
        ("GAMIFY_RATE_LIMIT_PER_TENANT", "0/60"),
        ("GAMIFY_RATE_LIMIT_INGEST_BURST", "a/b"),
        ("GAMIFY_REDIS_URL", "127.0.0.1:6379"),
    ],
)
def test_bad_settings_are_refused_by_name(name: str, value: str) -> None:
    from services.config import ConfigError

    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: value})

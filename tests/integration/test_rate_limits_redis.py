"""Rate limits with counters in a real Redis: shared by two app instances; fail open when down."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from services import metrics
from services.adapters.memory_event_log import InMemoryEventLog
from services.api.app import create_app
from services.config import Settings, parse_api_keys
from services.rate_limit_config import Rate, RateLimitSettings
from tests.redis_server import RedisUnavailable, delete_prefix
from tests.redis_server import redis_url as reachable_redis_url

BASE = "/api/v1/gamify"
ACME = {"X-API-Key": "k-acme"}
MakeClient = Callable[[RateLimitSettings], Awaitable[TestClient]]


@pytest.fixture
def redis_prefix() -> Iterator[tuple[str, str]]:
    """A reachable Redis (the test fails with the reason when there is none) and a fresh prefix."""
    try:
        url = reachable_redis_url()
    except RedisUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    prefix = f"gamify-test-{uuid.uuid4().hex[:12]}"
    yield url, prefix
    delete_prefix(url, prefix)


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[MakeClient]:
    clients: list[TestClient] = []

    async def make(limits: RateLimitSettings) -> TestClient:
        settings = Settings(
            api_keys=parse_api_keys("acme:k-acme"),
            data_dir=tmp_path / str(len(clients)),
            rate_limits=limits,
        )
        client = TestClient(TestServer(create_app(settings, event_log=InMemoryEventLog())))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def test_two_app_instances_share_one_redis_counter(
    make_client: MakeClient, redis_prefix: tuple[str, str]
) -> None:
    url, prefix = redis_prefix
    limits = RateLimitSettings(
        per_key=Rate(3, 60), per_tenant=None, redis_url=url, redis_prefix=prefix
    )
    one, two = await make_client(limits), await make_client(limits)
    seen = []
    for client in (one, two, one):
        resp = await client.get(f"{BASE}/participants/p", headers=ACME)
        assert resp.status == 404
        seen.append(resp.headers["X-RateLimit-Remaining"])
    assert seen == ["2", "1", "0"]
    refused = await two.get(f"{BASE}/participants/p", headers=ACME)
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    assert (await refused.json())["detail"].startswith("Rate limit exceeded")


async def test_an_unreachable_redis_lets_requests_through_with_a_warning_and_a_metric(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    limits = RateLimitSettings(
        per_key=Rate(1, 60), per_tenant=None, redis_url=f"redis://127.0.0.1:{closed}/0"
    )
    before = metrics.RATE_LIMIT_ERRORS._value.get()
    caplog.set_level(logging.WARNING)
    client = await make_client(limits)
    for _ in range(3):
        resp = await client.get(f"{BASE}/participants/p", headers=ACME)
        assert resp.status == 404 and "X-RateLimit-Limit" not in resp.headers
    assert metrics.RATE_LIMIT_ERRORS._value.get() - before == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("does not answer" in w for w in warnings)  # at start-up
    assert sum("requests are let through uncounted" in w for w in warnings) == 1  # throttled

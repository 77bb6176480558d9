"""Webhooks end to end in one process: the admin API, the dispatcher behind the projector, the
sender, against a real aiohttp receiver on 127.0.0.1, with both read-model stores."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.api.app import create_app
from services.config import Settings, WebhookSettings, parse_api_keys
from services.webhooks.signing import signature, verify

API = "/api/v1/gamify"
ADMIN = {"X-API-Key": "key-admin"}
FAST = WebhookSettings(
    max_attempts=3,
    backoff=0.05,
    backoff_factor=2,
    timeout=0.5,
    poll_interval=0.02,
    allow_private=True,
)


@dataclass
class Receiver:
    """A webhook receiver: answers ``script`` statuses in turn (then 200); ``hang`` sleeps."""

    script: list[int | str] = field(default_factory=list)
    got: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.got.append((dict(request.headers), body))
        step = self.script.pop(0) if self.script else 200
        if step == "hang":
            await asyncio.sleep(5)
            step = 200
        return web.Response(status=int(step))

    def bodies(self) -> list[dict[str, Any]]:
        return [orjson.loads(b) for _, b in self.got]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    found.url = f"http://127.0.0.1:{port}/hook"
    yield found
    await runner.cleanup()


@pytest.fixture
async def client(tmp_path: Path, database_url: str) -> AsyncIterator[TestClient]:
    settings = Settings(
        api_keys=parse_api_keys("acme:key-acme,acme:key-admin:admin,globex:key-globex:admin"),
        data_dir=tmp_path / "data",
        database_url=None if database_url.startswith("sqlite") else database_url,
        webhooks=FAST,
    )
    async with TestClient(TestServer(create_app(settings))) as found:
        yield found


async def until(check: Callable[[], Awaitable[bool] | bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if await result if isinstance(result, Awaitable) else result:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met within the deadline")


async def subscribe(client: TestClient, url: str, **extra: Any) -> dict[str, Any]:
    reply = await client.post(
        f"{API}/admin/webhooks", json={"url": url, "events": ["*"], **extra}, headers=ADMIN
    )
    assert reply.status == 201, await reply.text()
    return await reply.json()  # type: ignore[no-any-return]


async def award(client: TestClient, pid: str, amount: int, key: str | None = None) -> None:
    headers = {"X-API-Key": "key-acme", **({"Idempotency-Key": key} if key else {})}
    reply = await client.post(
        f"{API}/points/award", json={"participant_id": pid, "amount": amount}, headers=headers
    )
    assert reply.status in (200, 201), await reply.text()


async def test_a_signed_delivery_reaches_the_receiver_and_the_secret_is_shown_once(
    client: TestClient, receiver: Receiver
) -> None:
    created = await subscribe(client, receiver.url, secret="s3cret-0123456789abcdef")
    assert created["secret"] == "s3cret-0123456789abcdef"
    shown = await (await client.get(f"{API}/admin/webhooks/{created['id']}", headers=ADMIN)).json()
    listed = await (await client.get(f"{API}/admin/webhooks", headers=ADMIN)).json()
    assert "secret" not in shown and all("secret" not in w for w in listed["webhooks"])
    await award(client, "alice", 10)
    await until(
        lambda: {"participant.created", "points.awarded"} <= {b["type"] for b in receiver.bodies()}
    )
    for headers, body in receiver.got:
        assert verify(
            created["secret"], body, headers["X-Gamify-Timestamp"], headers["X-Gamify-Signature"]
        )
        assert headers["X-Bricqs-Signature"] == signature(created["secret"], body)
        assert headers["X-Gamify-Event"] == headers["X-Bricqs-Event"] == orjson.loads(body)["type"]
        assert headers["X-Bricqs-Tenant"] == "acme"
        assert headers["X-Gamify-Delivery"] == headers["X-Bricqs-Delivery"]
    points = next(b for b in receiver.bodies() if b["type"] == "points.awarded")
    assert set(points) == {"id", "type", "occurred_at", "tenant_id", "data"}
    assert points["tenant_id"] == "acme"
    assert points["data"]["participant_id"] == "alice" and points["data"]["amount"] == 10


async def test_a_generated_secret_signs_and_a_private_address_is_refused_without_the_setting(
    client: TestClient, receiver: Receiver
) -> None:
    created = await subscribe(client, receiver.url, events=["points.awarded"])
    assert created["secret"].startswith("whsec_")
    await award(client, "bob", 5)
    await until(lambda: len(receiver.got) == 1)
    headers, body = receiver.got[0]
    assert verify(
        created["secret"], body, headers["X-Gamify-Timestamp"], headers["X-Gamify-Signature"]
    )
    assert orjson.loads(body)["type"] == "points.awarded"  # participant.created not subscribed


async def test_500s_and_timeouts_are_retried_with_the_same_id_then_delivered(
    client: TestClient, receiver: Receiver
) -> None:
    receiver.script = [500, "hang"]
    created = await subscribe(client, receiver.url, events=["points.awarded"])
    await award(client, "carol", 7)
    await until(lambda: len(receiver.got) == 3)
    ids = {orjson.loads(b)["id"] for _, b in receiver.got}
    deliveries = {h["X-Gamify-Delivery"] for h, _ in receiver.got}
    assert len(ids) == 1 and len(deliveries) == 1
    url = f"{API}/admin/webhooks/{created['id']}/deliveries"

    async def delivered() -> bool:
        found = (await (await client.get(url, headers=ADMIN)).json())["deliveries"]
        return len(found) == 1 and found[0]["status"] == "delivered"

    await until(delivered)
    [row] = (await (await client.get(url, headers=ADMIN)).json())["deliveries"]
    assert row["attempts"] == 3 and row["last_status_code"] == 200
    assert row["id"] == deliveries.pop()


async def test_a_delivery_that_keeps_failing_is_marked_failed_and_can_be_redelivered(
    client: TestClient, receiver: Receiver
) -> None:
    receiver.script = [503, 503, 503]
    created = await subscribe(client, receiver.url, events=["points.awarded"])
    await award(client, "dave", 3)
    url = f"{API}/admin/webhooks/{created['id']}/deliveries"

    async def one(status: str) -> dict[str, Any] | None:
        found = (await (await client.get(url, headers=ADMIN)).json())["deliveries"]
        return found[0] if found and found[0]["status"] == status else None

    await until(lambda: one("failed"))
    failed = await one("failed")
    assert failed is not None and failed["attempts"] == 3 and failed["last_status_code"] == 503
    assert failed["next_attempt_at"] is None
    again = await client.post(f"{url}/{failed['id']}/redeliver", headers=ADMIN)
    assert again.status == 202
    await until(lambda: one("delivered"))
    assert len({orjson.loads(b)["id"] for _, b in receiver.got}) == 1
    missing = await client.post(f"{url}/nope/redeliver", headers=ADMIN)
    assert missing.status == 404


async def test_a_dead_receiver_does_not_hold_up_another(
    client: TestClient, receiver: Receiver
) -> None:
    await subscribe(client, "http://127.0.0.1:9/dead", events=["points.awarded"])  # discard port
    await subscribe(client, receiver.url, events=["points.awarded"])
    for n in range(5):
        await award(client, f"p{n}", 1)
    await until(lambda: len(receiver.got) == 5)


async def test_a_retried_request_gives_one_webhook(client: TestClient, receiver: Receiver) -> None:
    created = await subscribe(client, receiver.url, events=["points.awarded"])
    await award(client, "erin", 4, key="same-key")
    await award(client, "erin", 4, key="same-key")  # a retry: answered from the first commit
    await award(client, "erin", 6)
    url = f"{API}/admin/webhooks/{created['id']}/deliveries"

    async def settled() -> bool:
        # the log is read in order: once the last award's delivery is done, all before it are
        found = (await (await client.get(url, headers=ADMIN)).json())["deliveries"]
        amounts = [b["data"]["amount"] for b in receiver.bodies()]
        return 6 in amounts and all(d["status"] == "delivered" for d in found)

    await until(settled)
    found = await (await client.get(url, headers=ADMIN)).json()
    assert found["total"] == 2
    assert sorted(b["data"]["amount"] for b in receiver.bodies()) == [4, 6]


async def test_subscriptions_are_per_tenant_and_need_the_admin_scope(
    client: TestClient, receiver: Receiver
) -> None:
    reply = await client.post(
        f"{API}/admin/webhooks",
        json={"url": receiver.url, "events": ["*"]},
        headers={"X-API-Key": "key-acme"},
    )
    assert reply.status == 403
    created = await subscribe(client, receiver.url)
    other = await client.get(
        f"{API}/admin/webhooks/{created['id']}", headers={"X-API-Key": "key-globex"}
    )
    assert other.status == 404
    bad = await client.post(
        f"{API}/admin/webhooks", json={"url": "ftp://x", "events": ["nope"]}, headers=ADMIN
    )
    assert bad.status == 422
    patched = await client.patch(
        f"{API}/admin/webhooks/{created['id']}", json={"events": ["badge.earned"]}, headers=ADMIN
    )
    assert patched.status == 200 and (await patched.json())["events"] == ["badge.earned"]
    deleted = await client.delete(f"{API}/admin/webhooks/{created['id']}", headers=ADMIN)
    assert (await deleted.json())["is_active"] is False

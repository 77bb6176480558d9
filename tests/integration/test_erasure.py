"""Erasure by crypto-shredding, on both logs: the raw log bytes never reveal personal data, and
after DELETE /admin/participants/{pid} nothing (read models, replays) can show it again.

Runs the app in-process on the embedded SQLite log (SQLite read models and key store) and on
Kafka (PostgreSQL read models, the key store in the ``gamify_keys`` schema), then reads the raw
log: the SQLite log file and its rows, and the Kafka topic's records through aiokafka.
"""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaConsumer, TopicPartition

from projections.db import open_database
from services.api.app import create_app
from services.api.keys import data_keys_key
from services.cli import build_parser, replay_command
from services.config import Settings, parse_api_keys
from tests.kafka_broker import Broker

BASE = "/api/v1/gamify"
ACME = {"X-API-Key": "k-acme"}
ADMIN = {"X-API-Key": "k-admin"}
NAME, EMAIL, AVATAR = "Zelda Quetzalcoatl", "zelda.q@example.org", "https://cdn.example/zq.png"
REASON, NOTE, PROPERTY = "gift for Zelda's birthday", "zq-order-note", "zq-secret-property"
SECRETS = (NAME, EMAIL, AVATAR, REASON, NOTE, PROPERTY)


@pytest.fixture(params=["embedded", "kafka"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    common: dict[str, Any] = {
        "api_keys": parse_api_keys("acme:k-acme,acme:k-admin:admin"),
        "data_dir": tmp_path,
        "write_timeout": 20.0,
    }
    if request.param == "embedded":
        return Settings(**common)
    broker: Broker = request.getfixturevalue("kafka_broker")
    return Settings(
        **common,
        database_url=request.getfixturevalue("postgres_schema_url"),
        kafka_bootstrap_servers=broker.bootstrap,
        kafka_topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        kafka_partitions=2,
        kafka_idempotence=broker.idempotence_supported,
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings))) as c:
        yield c


async def call(client: TestClient, method: str, path: str, status: int, **kw: Any) -> Any:
    resp = await client.request(method, f"{BASE}{path}", headers=kw.pop("headers", ACME), **kw)
    assert resp.status == status, await resp.text()
    return None if status == 204 else await resp.json()


async def raw_log(settings: Settings) -> list[bytes]:
    """Every byte the log holds: the SQLite log's files and rows, or the Kafka records."""
    if not settings.kafka_bootstrap_servers:
        path = Path(settings.log_path)
        files = [p.read_bytes() for p in path.parent.glob(path.name + "*")]
        with sqlite3.connect(settings.log_path) as conn:
            rows = [bytes(r[0]) for r in conn.execute("SELECT state FROM participant_events")]
        assert rows, "the log has records"
        return files + rows
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        topic = settings.participant_events_topic
        await consumer.topics()  # fetches the topic's metadata
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[bytes] = []
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for r in records:
                    found += [r.value or b"", r.key or b""]
                    found += [v for _, v in r.headers]
        assert found, "the topic has records"
        return found
    finally:
        await consumer.stop()


def read_model_text(settings: Settings) -> str:
    """Every row of every read-model table, as text."""
    db = open_database(settings.read_model_url)
    try:
        with db.transaction(commit=False) as c:
            if db.kind == "sqlite":
                c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            else:
                c.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = current_schema()"
                )
            tables = [list(r.values())[0] if isinstance(r, dict) else r[0] for r in c.fetchall()]
            dumped = []
            for table in tables:
                c.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from the catalog
                dumped.append(repr(c.fetchall()))
        return "\n".join(dumped)
    finally:
        db.close()


def replay(settings: Settings, *args: str) -> int:
    return replay_command(settings, build_parser().parse_args(["replay", *args]))


async def test_personal_data_is_never_in_the_log_and_unreadable_everywhere_after_erasure(
    client: TestClient, settings: Settings
) -> None:
    board = {"code": "weekly", "name": "Weekly", "metric": "points", "time_window": "all_time"}
    await call(client, "POST", "/admin/leaderboards", 201, headers=ADMIN, json=board)
    pid = f"zq-{uuid.uuid4().hex[:6]}"
    profile = {"participant_id": pid, "display_name": NAME, "avatar_url": AVATAR}
    await call(client, "POST", "/participants", 201, json={**profile, "attributes": {"e": EMAIL}})
    award = {"participant_id": pid, "amount": 70, "reason": REASON, "metadata": {"n": NOTE}}
    await call(
        client, "POST", "/points/award", 200, json=award, headers={**ACME, "Idempotency-Key": "k1"}
    )
    await call(
        client,
        "POST",
        "/points/deduct",
        200,
        json={"participant_id": pid, "amount": 20, "reason": REASON},
    )
    event = {"participant_id": pid, "event_name": "login", "properties": {"p": PROPERTY}}
    await call(client, "POST", "/events", 200, json=event)
    await call(client, "POST", "/points/award", 200, json={"participant_id": "other", "amount": 10})

    seen = await call(client, "GET", f"/participants/{pid}", 200)
    assert (seen["display_name"], seen["attributes"]) == (NAME, {"e": EMAIL})
    transactions = await call(client, "GET", f"/participants/{pid}/points/transactions", 200)
    assert REASON in str(transactions), "the read model shows what the log keeps sealed"
    before = await raw_log(settings)
    for secret in SECRETS:
        assert not any(secret.encode() in chunk for chunk in before), f"{secret!r} on the log"
    key = client.app[data_keys_key].key_for_write("acme", pid)[1]

    await call(client, "DELETE", f"/admin/participants/{pid}", 403)
    await call(client, "DELETE", f"/admin/participants/nobody-{pid}", 404, headers=ADMIN)
    await call(client, "DELETE", f"/admin/participants/{pid}", 204, headers=ADMIN)
    await call(client, "DELETE", f"/admin/participants/{pid}", 204, headers=ADMIN)

    erased = await call(client, "GET", f"/participants/{pid}", 200)
    assert (erased["display_name"], erased["avatar_url"], erased["attributes"]) == (None, None, {})
    points = await call(client, "GET", f"/participants/{pid}/points", 200)
    assert (points["balance"], points["total_earned"], points["total_spent"]) == (50, 70, 20)
    rank = await call(client, "GET", f"/leaderboards/weekly/rank/{pid}", 200)
    assert (rank["rank"], rank["score"]) == (1, 70), "the leaderboard keeps the erased's points"
    text = read_model_text(settings)
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} still in a read model after erasure"
    keys_file = settings.data_dir / "keys.db"
    if keys_file.exists():  # embedded: the key is overwritten in the file, the WAL truncated
        stored = b"".join(p.read_bytes() for p in keys_file.parent.glob("keys.db*"))
        assert key not in stored and base64.b64encode(key) not in stored

    # A rebuild from the log gives the same (anonymised) read models, byte for byte.
    assert await asyncio.to_thread(replay, settings, "--verify") == 0
    assert await asyncio.to_thread(replay, settings) == 0
    again = await call(client, "GET", f"/participants/{pid}", 200)
    assert again["display_name"] is None and again["attributes"] == {}
    assert await call(client, "GET", f"/participants/{pid}/points", 200) == points
    assert await call(client, "GET", f"/leaderboards/weekly/rank/{pid}", 200) == rank
    text = read_model_text(settings)
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} back in a read model after replay"

    # The participant can come back: new personal data gets a new key and shows again.
    await call(client, "PATCH", f"/participants/{pid}", 200, json={"display_name": "Z."})
    assert (await call(client, "GET", f"/participants/{pid}", 200))["display_name"] == "Z."

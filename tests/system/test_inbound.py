"""The inbound topic end to end: `gamify serve` on a real broker, commands published with aiokafka.

* valid messages (register, update, award, deduct) change the profile read over HTTP;
* invalid ones (bad JSON, unknown command, schema violations, unknown tenant, insufficient
  points, unknown participant, a reused idempotency key) land in the dead-letter topic with the
  original bytes, their error type and their source topic/partition/offset, and valid messages
  published after them on the same partition are still applied; /metrics counts them by kind;
* a message's own idempotency key makes a second copy a no-op; the same bytes without a key
  are two messages and apply twice;
* a redelivery (the group's offsets reset to 0 after a stop, as after a crash between
  processing and the offset commit) applies nothing twice: each message's offset-derived key
  (``inbound:<topic>:<partition>:<offset>``) turns it into a replay.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from tests.kafka_broker import Broker
from tests.system.support import (
    GamifyProcess,
    eventually,
    kafka_env,
    metric_sum,
    new_prefix,
    read_topic,
)

API = "/api/v1/gamify"
KEYS = {"acme": "key-acme", "globex": "key-globex"}
PARTITIONS = 3
DEADLINE = 30.0


class Inbound:
    """The module's server plus what the tests published (to check redelivery afterwards)."""

    def __init__(self, server: GamifyProcess, broker: Broker, prefix: str) -> None:
        self.server = server
        self.broker = broker
        self.topic = f"{prefix}inbound"
        self.dlq = f"{prefix}inbound-dlq"
        self.group = f"{prefix}inbound"
        self.touched: set[tuple[str, str]] = set()
        self.ends: dict[int, int] = {}

    async def publish(self, key: str, *values: bytes | dict[str, Any]) -> list[Any]:
        """Send ``values`` in order under ``key``; returns each record's metadata."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.broker.bootstrap,
            acks="all",
            enable_idempotence=self.broker.idempotence_supported,
        )
        await producer.start()
        try:
            sent = []
            for value in values:
                if isinstance(value, dict):
                    if isinstance(value.get("participant_id"), str) and value.get("tenant") in KEYS:
                        self.touched.add((value["tenant"], value["participant_id"]))
                    value = json.dumps(value).encode()
                md = await producer.send_and_wait(self.topic, value, key=key.encode())
                self.ends[md.partition] = max(self.ends.get(md.partition, 0), md.offset + 1)
                sent.append(md)
            return sent
        finally:
            await producer.stop()

    async def get(self, path: str, tenant: str = "acme") -> tuple[int, Any]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.get(
                f"{self.server.base_url}{API}{path}", headers={"X-API-Key": KEYS[tenant]}
            ) as reply:
                return reply.status, await reply.json(content_type=None)

    async def profile(self, pid: str, tenant: str = "acme") -> Any:
        status, body = await self.get(f"/participants/{pid}", tenant)
        return body if status == 200 else status

    async def ledger(self, pid: str, tenant: str = "acme") -> Any:
        status, body = await self.get(
            f"/participants/{pid}/points/transactions?page_size=100", tenant
        )
        return body if status == 200 else status

    async def wait_profile(self, pid: str, done: Any, tenant: str = "acme") -> Any:
        return await eventually(
            lambda: self.profile(pid, tenant),
            lambda p: isinstance(p, dict) and done(p),
            timeout=DEADLINE,
            what=f"profile of {tenant}/{pid}",
            context=self.server.tail,
        )

    def dead_letters(self) -> dict[str, float]:
        text = self.server.metrics_text()
        kinds = (
            "invalid_json",
            "unknown_command",
            "schema",
            "unknown_tenant",
            "rejected",
            "conflict",
        )
        return {k: metric_sum(text, "gamify_dead_letters_total", kind=k) for k in kinds}


@pytest.fixture(scope="module")
def inbound(kafka_broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Inbound]:
    prefix = new_prefix()
    env = kafka_env(kafka_broker, prefix, PARTITIONS)
    env["GAMIFY_API_KEYS"] = ",".join(f"{t}:{k}" for t, k in KEYS.items())
    server = GamifyProcess("serve", env, tmp_path_factory.mktemp("inbound-serve"))
    server.start()  # creates the inbound and dead-letter topics before it answers /healthz
    yield Inbound(server, kafka_broker, prefix)
    server.terminate()


def msg(command: str, pid: str | None, tenant: str = "acme", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"command": command, "tenant": tenant, **fields}
    if pid is not None:
        body["participant_id"] = pid
    return body


async def test_valid_commands_change_the_profile(inbound: Inbound) -> None:
    pid = "ada"
    await inbound.publish(
        f"acme:{pid}",
        msg(
            "participants.register",
            pid,
            display_name="Ada",
            avatar_url="https://img/a.png",
            attributes={"team": "red", "level": 1},
        ),
        msg(
            "participants.update", pid, display_name="Ada L.", attributes={"level": 2, "team": None}
        ),
        msg("points.award", pid, amount=100, reason="quest"),
        msg("points.deduct", pid, amount=30, reason="shop"),
    )
    await inbound.publish(f"globex:{pid}", msg("points.award", pid, "globex", amount=5))

    profile = await inbound.wait_profile(pid, lambda p: p["points"]["total_spent"] == 30)
    assert profile["display_name"] == "Ada L."
    assert profile["avatar_url"] == "https://img/a.png"
    assert profile["attributes"] == {"level": 2}
    assert profile["points"] == {"balance": 70, "total_earned": 100, "total_spent": 30}
    ledger = await inbound.ledger(pid)
    assert ledger["total"] == 2
    assert [
        (t["type"], t["amount"], t["balance_after"], t["reason"]) for t in ledger["transactions"]
    ] == [("deduct", -30, 70, "shop"), ("award", 100, 100, "quest")]
    other = await inbound.wait_profile(pid, lambda p: p["points"]["balance"] == 5, "globex")
    assert other["display_name"] is None  # tenants never see each other's participants


async def test_invalid_messages_are_dead_lettered_and_do_not_block_the_partition(
    inbound: Inbound,
) -> None:
    pid = "bob"
    key = f"acme:{pid}"
    before = inbound.dead_letters()
    bad: list[tuple[bytes, str]] = [
        (b'{"command": "points.award", "tenant": "acme", ', "invalid_json"),
        (json.dumps(msg("points.transfer", pid, amount=5)).encode(), "unknown_command"),
        (json.dumps(msg("points.award", None, amount=5)).encode(), "schema"),
        (json.dumps(msg("points.award", pid, amount=0)).encode(), "schema"),
        (json.dumps(msg("points.award", pid, amount="10")).encode(), "schema"),
        (json.dumps(msg("points.award", pid, "initech", amount=5)).encode(), "unknown_tenant"),
        (json.dumps(msg("points.deduct", pid, amount=1000)).encode(), "rejected"),
        (json.dumps(msg("participants.update", "nobody", display_name="X")).encode(), "rejected"),
    ]
    sent = await inbound.publish(
        key,
        msg("points.award", pid, amount=50),
        *[value for value, _ in bad],
        msg("points.award", pid, amount=7),
    )
    assert len({md.partition for md in sent}) == 1, "one key, one partition"

    # The message after the invalid ones is applied: they did not block the partition.
    profile = await inbound.wait_profile(pid, lambda p: p["points"]["total_earned"] == 57)
    assert profile["points"] == {"balance": 57, "total_earned": 57, "total_spent": 0}
    assert (await inbound.ledger(pid))["total"] == 2
    assert await inbound.profile("nobody") == 404

    letters = {
        (h["gamify-dlq-source-partition"], h["gamify-dlq-source-offset"]): (r, h)
        for r in await read_topic(inbound.broker.bootstrap, inbound.dlq)
        if (h := {k: v.decode() for k, v in r.headers})["gamify-dlq-source-topic"] == inbound.topic
    }
    for md, (value, kind) in zip(sent[1:-1], bad, strict=True):
        found = letters.get((str(md.partition), str(md.offset)))
        assert found is not None, f"{kind} message at {md.partition}/{md.offset} not dead-lettered"
        record, headers = found
        assert record.value == value  # the original bytes, untouched
        assert record.key == key.encode()
        assert headers["gamify-dlq-error-type"] == kind, headers
        assert headers["gamify-dlq-reason"], headers
    for md in (sent[0], sent[-1]):  # the valid ones are not dead-lettered
        assert (str(md.partition), str(md.offset)) not in letters

    after = inbound.dead_letters()
    delta = {k: after[k] - before[k] for k in after}
    assert delta == {
        "invalid_json": 1,
        "unknown_command": 1,
        "schema": 3,
        "unknown_tenant": 1,
        "rejected": 2,
        "conflict": 0,
    }


async def test_idempotency_key_applies_once(inbound: Inbound) -> None:
    pid = "carol"
    award = msg("points.award", pid, amount=10, idempotency_key="order-1")
    sent = await inbound.publish(
        f"acme:{pid}",
        award,
        award,  # the same message again: a replay
        msg("points.deduct", pid, amount=1, idempotency_key="order-1"),  # key of another command
        msg("points.award", pid, amount=1),  # published last: once applied, all were handled
    )
    profile = await inbound.wait_profile(pid, lambda p: p["points"]["total_earned"] >= 11)
    assert profile["points"] == {"balance": 11, "total_earned": 11, "total_spent": 0}
    assert (await inbound.ledger(pid))["total"] == 2
    letters = [
        h
        for r in await read_topic(inbound.broker.bootstrap, inbound.dlq)
        if (h := {k: v.decode() for k, v in r.headers})["gamify-dlq-source-offset"]
        == str(sent[2].offset)
        and h["gamify-dlq-source-partition"] == str(sent[2].partition)
    ]
    assert [h["gamify-dlq-error-type"] for h in letters] == ["rejected"]
    assert "order-1" in letters[0]["gamify-dlq-reason"]


async def test_a_key_reused_with_another_message_is_dead_lettered(inbound: Inbound) -> None:
    """The same key on the same command with other fields is another request (HTTP: 422)."""
    pid = "erin"
    sent = await inbound.publish(
        f"acme:{pid}",
        msg("points.award", pid, amount=10, idempotency_key="order-9"),
        msg("points.award", pid, idempotency_key="order-9", amount=10),  # a retry: replayed
        msg("points.award", pid, amount=20, idempotency_key="order-9"),  # another message
        msg("points.award", pid, amount=5, idempotency_key="bad key!"),  # not the key pattern
        msg("points.award", pid, amount=1),  # published last: once applied, all were handled
    )
    profile = await inbound.wait_profile(pid, lambda p: p["points"]["total_earned"] >= 11)
    assert profile["points"]["balance"] == 11
    letters = {
        (h["gamify-dlq-source-partition"], h["gamify-dlq-source-offset"]): h
        for r in await read_topic(inbound.broker.bootstrap, inbound.dlq)
        if (h := {k: v.decode() for k, v in r.headers})["gamify-dlq-source-topic"] == inbound.topic
    }
    at = [letters.get((str(md.partition), str(md.offset))) for md in sent]
    assert at[0] is None and at[1] is None and at[4] is None
    assert at[2] is not None and at[2]["gamify-dlq-error-type"] == "rejected"
    assert "different body" in at[2]["gamify-dlq-reason"]
    assert at[3] is not None and at[3]["gamify-dlq-error-type"] == "schema"


async def test_same_bytes_without_idempotency_key_are_two_messages(inbound: Inbound) -> None:
    """Two publishes are two offsets, so two commands. (A *redelivery* of one offset is not:
    its key ``inbound:<topic>:<partition>:<offset>`` makes it a replay; see the test below.)"""
    pid = "dave"
    award = json.dumps(msg("points.award", pid, amount=4)).encode()
    inbound.touched.add(("acme", pid))
    await inbound.publish(f"acme:{pid}", award, award)
    profile = await inbound.wait_profile(pid, lambda p: p["points"]["total_earned"] >= 8)
    assert profile["points"]["balance"] == 8
    assert (await inbound.ledger(pid))["total"] == 2


async def test_values_the_boundary_refuses_are_dead_lettered_as_schema_and_later_ones_apply(
    inbound: Inbound,
) -> None:
    """The same boundary as HTTP (services/validation.py): control characters, floats for
    integers, bidi overrides in ids, timestamps outside the window, oversized numbers in maps."""
    pid = "boris"  # a participant no other test of this module touches
    key = f"acme:{pid}"
    before = inbound.dead_letters()
    bad: list[tuple[dict[str, Any], str]] = [
        (msg("points.award", pid, amount=1, reason="a\u0000b"), "reason"),
        (msg("points.award", pid, amount=1.0), "amount"),
        (msg("points.award", "gi\u202ena", amount=1), "participant_id"),
        (msg("participants.register", pid, display_name="G\u0000"), "display_name"),
        (msg("points.award", pid, amount=1, metadata={"a": {"b": "\u0085"}}), "metadata.a.b"),
        (msg("events.track", pid, event_name="e", timestamp="2030-01-01T00:00:00Z"), "timestamp"),
        (
            msg("events.track", pid, event_name="e", timestamp="0001-01-01T00:00:00+01:00"),
            "timestamp",
        ),
        (msg("events.track", pid, event_name="e", properties={"t": 1e308}), "properties.t"),
    ]
    values = [json.dumps(m).encode() for m, _ in bad]
    inbound.touched.add(("acme", pid))
    sent = await inbound.publish(
        key, *values, msg("points.award", pid, amount=3, reason="after", metadata={"k": "v"})
    )
    profile = await inbound.wait_profile(pid, lambda p: p["points"]["total_earned"] == 3)
    assert profile["points"] == {"balance": 3, "total_earned": 3, "total_spent": 0}
    assert profile["display_name"] is None and profile["total_events"] == 0
    letters = {
        (h["gamify-dlq-source-partition"], h["gamify-dlq-source-offset"]): (r, h)
        for r in await read_topic(inbound.broker.bootstrap, inbound.dlq)
        if (h := {k: v.decode() for k, v in r.headers})["gamify-dlq-source-topic"] == inbound.topic
    }
    for md, value, (_, field) in zip(sent[:-1], values, bad, strict=True):
        found = letters.get((str(md.partition), str(md.offset)))
        assert found is not None, (
            f"{field}: message at {md.partition}/{md.offset} not dead-lettered"
        )
        record, headers = found
        assert record.value == value
        assert headers["gamify-dlq-error-type"] == "schema", headers
        assert headers["gamify-dlq-reason"].startswith(f"{field}: "), headers
    after = inbound.dead_letters()
    assert after["schema"] - before["schema"] == len(bad)


async def test_an_award_batch_applies_its_good_items_and_dead_letters_the_rest_once(
    inbound: Inbound,
) -> None:
    gwen, hal, ivy = "gwen", "hal", "ivy"
    inbound.touched.update({("acme", gwen), ("acme", hal), ("acme", ivy)})  # redelivered below
    awards = [
        {"participant_id": gwen, "amount": 10, "idempotency_key": "batch-1"},
        {"participant_id": hal, "amount": 0},
        {"participant_id": hal, "amount": 3},  # no key: the record's offset plus ":2"
        {"participant_id": gwen, "amount": 2},
    ]
    sent = await inbound.publish(
        "acme:batch",
        msg("points.award_batch", None, awards=awards),
        msg("points.award_batch", None, awards=awards[:1]),  # a retry of the keyed item
        msg("points.award", ivy, amount=1),  # same partition, after both batches
    )
    await inbound.wait_profile(ivy, lambda p: p["points"]["total_earned"] == 1)
    assert (await inbound.profile(gwen))["points"]["balance"] == 12
    assert (await inbound.profile(hal))["points"]["balance"] == 3
    letters = [
        h
        for r in await read_topic(inbound.broker.bootstrap, inbound.dlq)
        if (h := {k: v.decode() for k, v in r.headers})["gamify-dlq-source-topic"] == inbound.topic
        and h["gamify-dlq-source-partition"] == str(sent[0].partition)
        and h["gamify-dlq-source-offset"] in {str(md.offset) for md in sent}
    ]
    assert [h["gamify-dlq-source-offset"] for h in letters] == [str(sent[0].offset)]
    assert letters[0]["gamify-dlq-error-type"] == "schema"
    reason = letters[0]["gamify-dlq-reason"]
    assert "1 of 4 items failed (3 applied)" in reason and "awards[1].amount" in reason


# --------------------------------------------------------------------------------------------
# Redelivery: stop the server, rewind the inbound group to offset 0, start it again.


async def reset_group(broker: Broker, topic: str, group: str) -> None:
    """Join ``group`` alone (the server is stopped) and commit offset 0 on every partition.

    A member's commit, because tansu refuses commits from outside the group's generation.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=group,
        enable_auto_commit=False,
        session_timeout_ms=2000,
        heartbeat_interval_ms=600,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        for _ in range(100):
            if set(consumer.assignment()) == set(tps):
                break
            await consumer.getmany(timeout_ms=200, max_records=1)
        assert set(consumer.assignment()) == set(tps)
        await consumer.commit(dict.fromkeys(tps, 0))
        assert [await consumer.committed(tp) for tp in tps] == [0] * PARTITIONS
    finally:
        await consumer.stop()


async def committed(broker: Broker, topic: str, group: str) -> dict[int, int | None]:
    """The group's committed offsets, read without joining the group."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)}
    finally:
        await consumer.stop()


class Redelivery:
    def __init__(self, snapshot: dict[tuple[str, str], Any], after: dict[tuple[str, str], Any]):
        self.before, self.after = snapshot, after


@pytest.fixture(scope="module")
def redelivered(inbound: Inbound) -> Redelivery:
    """Publish the edge cases, snapshot every participant, redeliver everything, snapshot again."""

    async def scenario() -> Redelivery:
        # A no-op register between two changes, and a rejected deduct that a later award would
        # make affordable: neither left an idempotency record the first time.
        await inbound.publish(
            "acme:erin",
            msg("participants.register", "erin", display_name="A"),
            msg("participants.register", "erin", display_name="A"),  # no change: no commit
            msg("participants.update", "erin", display_name="B"),
        )
        await inbound.publish(
            "acme:frank",
            msg("points.award", "frank", amount=5),
            msg("points.deduct", "frank", amount=10),  # insufficient: dead-lettered
            msg("points.award", "frank", amount=100),
        )
        # The same bytes twice without a key: two awards, which a redelivery must not make four.
        keyless = json.dumps(msg("points.award", "gina", amount=4)).encode()
        inbound.touched.add(("acme", "gina"))
        await inbound.publish("acme:gina", keyless, keyless)
        await inbound.wait_profile("erin", lambda p: p["display_name"] == "B")
        await inbound.wait_profile("frank", lambda p: p["points"]["total_earned"] == 105)
        await inbound.wait_profile("gina", lambda p: p["points"]["total_earned"] == 8)
        ends = dict(inbound.ends)
        await eventually(
            lambda: committed(inbound.broker, inbound.topic, inbound.group),
            lambda found: all(found.get(p) == n for p, n in ends.items()),
            timeout=DEADLINE,
            what="inbound offsets committed",
            context=inbound.server.tail,
        )

        async def snapshot() -> dict[tuple[str, str], Any]:
            return {
                (t, p): (await inbound.profile(p, t), await inbound.ledger(p, t))
                for t, p in sorted(inbound.touched)
            }

        before = await snapshot()
        assert inbound.server.terminate() == 0, inbound.server.tail()
        await reset_group(inbound.broker, inbound.topic, inbound.group)
        inbound.server.start()
        await eventually(
            lambda: committed(inbound.broker, inbound.topic, inbound.group),
            lambda found: all(found.get(p) == n for p, n in ends.items()),
            timeout=DEADLINE,
            what="redelivered messages processed",
            context=inbound.server.tail,
        )
        return Redelivery(before, await snapshot())

    return asyncio.run(scenario())


async def test_redelivery_applies_nothing_twice(inbound: Inbound, redelivered: Redelivery) -> None:
    assert len(redelivered.before) >= 3
    changed = {
        key: (redelivered.before[key], redelivered.after[key])
        for key in redelivered.before
        if redelivered.before[key] != redelivered.after[key]
    }
    assert not changed, f"redelivery changed participants: {changed}"
    # the keyless pair: still two awards, not four
    assert redelivered.after[("acme", "gina")][0]["points"]["balance"] == 8


async def test_redelivered_noop_command_stays_a_noop(
    inbound: Inbound, redelivered: Redelivery
) -> None:
    profile = redelivered.after[("acme", "erin")][0]
    assert profile["display_name"] == "B"


async def test_redelivered_rejected_message_stays_rejected(
    inbound: Inbound, redelivered: Redelivery
) -> None:
    profile = redelivered.after[("acme", "frank")][0]
    assert profile["points"] == {"balance": 105, "total_earned": 105, "total_spent": 0}

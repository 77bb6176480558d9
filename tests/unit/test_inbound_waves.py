"""Inbound commands in waves (services/inbound/batch.py), over an in-memory log and the real store.

* the pure part: a batch cut into waves keeps each participant's order, one item per wave;
  a refused command becomes a commit holding only its key;
* the processor's partition path (``InboundProcessor._process``) on records built here: several
  messages of one participant keep their order and chain their versions; a refused message in
  the middle is dead-lettered and the rest apply; the whole batch delivered again changes
  nothing; a commit that loses a race with another writer is decided again on the new state.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiokafka.structs import ConsumerRecord

from schemas.codec import decode
from schemas.events import Causation, Commit, PointsAwarded
from schemas.log import LogPosition
from services.adapters.memory_event_log import InMemoryEventLog
from services.api.app import create_app
from services.api.keys import deps_key
from services.config import Settings, parse_api_keys
from services.inbound.batch import Item, decide_item, waves
from services.inbound.messages import parse
from services.inbound.processor import InboundProcessor, InboundTopics
from services.participants.domain import ParticipantState
from services.participants.engine import Catalog

BASE = "/api/v1/gamify"
ACME = {"X-API-Key": "k-acme"}
TOPIC = "test.inbound"
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def message(command: str, pid: str, **fields: Any) -> dict[str, Any]:
    return {"command": command, "tenant": "acme", "participant_id": pid, **fields}


def item(offset: int, body: dict[str, Any]) -> Item:
    parsed = parse(json.dumps(body).encode(), {"acme"}, now=NOW)
    assert not isinstance(parsed, Exception)
    return Item(f"{TOPIC}:0:{offset}", parsed)  # type: ignore[arg-type]


def test_waves_hold_one_item_per_participant_in_order() -> None:
    items = [
        item(0, message("points.award", "a", amount=1)),
        item(1, message("points.award", "b", amount=2)),
        item(2, message("points.award", "a", amount=3)),
        item(3, message("points.award", "a", amount=4)),
        item(4, message("points.award", "c", amount=5)),
    ]
    found = [[i.where.rsplit(":", 1)[1] for i in wave] for wave in waves(items)]
    assert found == [["0", "1", "4"], ["2"], ["3"]]
    assert waves([]) == []


def test_a_decision_uses_the_participants_version_and_the_messages_key() -> None:
    ids = iter(f"id-{n}" for n in range(10))
    state = ParticipantState(version=4, balance=10)
    award = item(7, message("points.award", "a", amount=3, idempotency_key="order-1"))
    decision = decide_item(award, state, Catalog(), NOW, lambda: next(ids))
    assert decision.refusal is None
    commit = decision.commit
    assert (commit.expected_version, commit.participant_id) == (4, "a")
    assert commit.causation.idempotency_key == "order-1"
    assert commit.causation.request_id == f"{TOPIC}:0:7"
    assert commit.causation.source == "inbound"
    assert [type(e) for e in commit.events] == [PointsAwarded]
    assert commit.events[0].balance_after == 13  # type: ignore[union-attr]


def test_a_refused_decision_is_a_commit_with_only_the_record_derived_key() -> None:
    deduct = item(9, message("points.deduct", "a", amount=50))
    decision = decide_item(deduct, ParticipantState(version=2, balance=5), Catalog(), NOW, str)
    assert decision.refusal == "Insufficient points. Available: 5, requested: 50"
    assert decision.commit.events == ()
    assert decision.commit.expected_version == 2
    assert decision.commit.causation.idempotency_key == f"inbound:{TOPIC}:0:9"


# --------------------------------------------------------------------------------------------
# The processor's partition path over the app's deps (in-memory log, SQLite store, projector).


class BatchLog(InMemoryEventLog):
    """An in-memory log with ``append_many``; ``race`` lands another writer's commit first."""

    def __init__(self) -> None:
        super().__init__()
        self.race: Commit | None = None
        self.calls: list[int] = []

    async def append_many(self, commits: Sequence[Commit]) -> list[LogPosition]:
        self.calls.append(len(commits))
        if self.race is not None:
            race, self.race = self.race, None
            await self.append(race)
        return [await self.append(c) for c in commits]


class RecordingProcessor(InboundProcessor):
    """The real processor; dead letters are recorded here instead of produced to Kafka."""

    letters: list[tuple[int, str, str]]

    async def dead_letter(self, record: ConsumerRecord, kind: str, reason: str) -> None:
        self.letters.append((record.offset, kind, reason))


@pytest.fixture
def log() -> BatchLog:
    return BatchLog()


@pytest.fixture
async def client(tmp_path: Path, log: BatchLog) -> AsyncIterator[TestClient]:
    settings = Settings(api_keys=parse_api_keys("acme:k-acme"), data_dir=tmp_path)
    async with TestClient(TestServer(create_app(settings, event_log=log))) as c:
        yield c


@pytest.fixture
async def processor(client: TestClient) -> AsyncIterator[RecordingProcessor]:
    found = RecordingProcessor(
        client.app[deps_key],
        "127.0.0.1:9",  # never contacted: _process neither consumes nor produces
        InboundTopics(TOPIC, f"{TOPIC}-dlq"),
        {"acme"},
        group_id="test.inbound",
    )
    found.letters = []
    yield found
    await found.consumer.stop()  # never started: only releases the clients
    await found.producer.stop()


def records(*bodies: dict[str, Any] | bytes) -> list[ConsumerRecord]:
    values = [b if isinstance(b, bytes) else json.dumps(b).encode() for b in bodies]
    return [
        ConsumerRecord(TOPIC, 0, offset, 0, 0, b"k", value, None, 1, 1, [])
        for offset, value in enumerate(values)
    ]


async def points(client: TestClient, pid: str) -> Any:
    reply = await client.get(f"{BASE}/participants/{pid}", headers=ACME)
    return (await reply.json())["points"] if reply.status == 200 else reply.status


async def ledger(client: TestClient, pid: str) -> list[tuple[str, int, int]]:
    url = f"{BASE}/participants/{pid}/points/transactions?page_size=100"
    body = await (await client.get(url, headers=ACME)).json()
    return [(t["type"], t["amount"], t["balance_after"]) for t in reversed(body["transactions"])]


def commits(log: InMemoryEventLog, pid: str) -> list[Commit]:
    return [c for c in map(decode, log.values) if c.participant_id == pid]


async def test_a_participants_messages_in_one_batch_keep_order_and_chain_versions(
    client: TestClient, processor: RecordingProcessor, log: BatchLog
) -> None:
    await processor._process(
        records(
            message("participants.register", "ada", display_name="Ada"),
            message("points.award", "ada", amount=10),
            message("points.award", "bob", amount=1),
            message("points.award", "ada", amount=5),
            message("points.deduct", "ada", amount=3),
        )
    )
    assert processor.letters == []
    assert await points(client, "ada") == {"balance": 12, "total_earned": 15, "total_spent": 3}
    assert await ledger(client, "ada") == [("award", 10, 10), ("award", 5, 15), ("deduct", -3, 12)]
    assert [c.expected_version for c in commits(log, "ada")] == [0, 1, 2, 3]
    assert await points(client, "bob") == {"balance": 1, "total_earned": 1, "total_spent": 0}
    assert log.calls == [2, 1, 1, 1]  # ada's four waves; bob rides in the first


async def test_a_refused_message_in_the_middle_is_dead_lettered_and_the_rest_apply(
    client: TestClient, processor: RecordingProcessor, log: BatchLog
) -> None:
    await processor._process(
        records(
            message("points.award", "cy", amount=5),
            message("points.deduct", "cy", amount=100),
            b"not json",
            message("points.award", "cy", amount=7),
        )
    )
    assert processor.letters == [
        (1, "rejected", "Insufficient points. Available: 5, requested: 100"),
        (2, "invalid_json", processor.letters[1][2]),
    ]
    assert await points(client, "cy") == {"balance": 12, "total_earned": 12, "total_spent": 0}
    keys = [(c.causation.idempotency_key, len(c.events)) for c in commits(log, "cy")]
    assert keys == [
        (f"inbound:{TOPIC}:0:0", 2),
        (f"inbound:{TOPIC}:0:1", 0),
        (f"inbound:{TOPIC}:0:3", 1),
    ]


async def test_the_whole_batch_delivered_again_changes_nothing(
    client: TestClient, processor: RecordingProcessor, log: BatchLog
) -> None:
    batch = records(
        message("points.award", "dee", amount=5, idempotency_key="order-1"),
        message("points.deduct", "dee", amount=50),  # refused: its key records the refusal
        message("points.award", "dee", amount=100),  # after it the deduct would be affordable
        message("participants.register", "eve"),
        message("participants.register", "eve"),  # no change: a commit with only its key
    )
    await processor._process(batch)
    first = (await points(client, "dee"), await ledger(client, "dee"), len(log.values))
    letters = list(processor.letters)
    assert first[0] == {"balance": 105, "total_earned": 105, "total_spent": 0}
    assert [kind for _, kind, _ in letters] == ["rejected"]

    await processor._process(batch)
    assert (await points(client, "dee"), await ledger(client, "dee"), len(log.values)) == first
    assert processor.letters == letters  # replayed, as the one-at-a-time path replays


async def test_a_commit_that_loses_a_race_is_decided_again_on_the_new_state(
    client: TestClient, processor: RecordingProcessor, log: BatchLog
) -> None:
    rival = Commit(
        commit_id="rival",
        tenant="acme",
        participant_id="fay",
        expected_version=0,
        recorded_at="2026-01-01T12:00:00Z",
        causation=Causation("points.award", "http"),
        events=(
            PointsAwarded(transaction_id="t-rival", amount=40, balance_after=40, base_amount=40),
        ),
    )
    log.race = rival  # lands between the wave's decision (version 0) and its append
    await processor._process(
        records(
            message("points.award", "fay", amount=2), message("points.deduct", "fay", amount=30)
        )
    )
    assert processor.letters == []  # the deduct saw the rival's 40 points
    assert await ledger(client, "fay") == [("award", 40, 40), ("award", 2, 42), ("deduct", -30, 12)]
    assert [(c.commit_id == "rival", c.expected_version) for c in commits(log, "fay")] == [
        (True, 0),
        (False, 0),  # conflicted: applied nothing
        (False, 1),  # the same message decided again, on the one-at-a-time path
        (False, 2),
    ]

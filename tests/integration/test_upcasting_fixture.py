"""A log written in an older event format replays into the expected read models.

``tests/fixtures/log_v1.jsonl`` is written by hand, one commit per line: PointsAwarded and
PointsDeducted at version 1 (no ``metadata``), ParticipantProfileUpdated at version 1 (``fields``
instead of ``changes``) and at version 2 (``changes.attributes`` holding the whole merged map,
read as a replacement by it: c-15 and c-16 give the same row as the version 2 code gave), mixed
with current-version events, over three participants in two tenants, with one duplicate (reused idempotency key) and one stale (conflicting) commit. The
lines are stored as they are (never re-encoded) in the embedded SQLite log, replayed (by
replay() and by the live projector's runner) into a fresh SQLite or PostgreSQL store, and the read models are compared with values
worked out by hand below.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from eventsourcing.persistence import StoredEvent

from projections import runner
from projections.db import Database
from projections.participants.projector import ParticipantRow
from projections.participants.queries import ParticipantQueries
from projections.participants.store import participant_store
from projections.replay import ReplayOptions, replay
from projections.sources.sqlite import SqliteLogReader, SqliteLogSource
from schemas.events import EVENT_CLASSES
from services.adapters.read_model import logged_events
from services.adapters.sqlite_event_log import open_log_recorder

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "log_v1.jsonl"
TOPIC = "gamify.participant-events"


def fixture_lines() -> list[bytes]:
    return [line for line in FIXTURE.read_bytes().splitlines() if line.strip()]


def commit_schema() -> dict[str, Any]:
    text = resources.files("schemas").joinpath("json", "participant_commit.v1.json").read_text()
    return json.loads(text)


# --------------------------------------------------------------------------------------------
# What the read models must hold, worked out by hand from the fixture


EXPECTED_ROWS = {
    ("acme", "alice"): ParticipantRow(
        tenant="acme",
        participant_id="alice",
        version=5,  # c-01, c-02, c-03, c-04, c-09
        display_name="Alice A.",  # v1 update: fields.display_name
        avatar_url=None,
        attributes={"team": "blue", "level": 1},  # v1 update: fields.attributes
        balance=50,  # 100 - 30 - 20
        total_earned=100,
        total_spent=50,
        created_at="2025-03-01T09:00:00Z",
        last_seen_at="2025-03-01T09:08:00Z",
    ),
    ("acme", "bob"): ParticipantRow(
        tenant="acme",
        participant_id="bob",
        version=6,  # c-05, c-06, c-08, c-15, c-16, c-17 (c-07 reuses bob-award-2: duplicate)
        display_name="Bobby",  # v2 update c-15
        avatar_url="https://img.example/bob.png",
        # v2 c-15 {team, rank} then v2 c-16 {rank: 3, note: null} replace the map (team gone),
        # then v3 c-17 sets level and removes rank.
        attributes={"note": None, "level": 7},
        balance=75,  # 50 + 25
        total_earned=75,
        total_spent=0,
        created_at="2025-03-01T09:04:00Z",
        last_seen_at="2025-03-01T09:16:00Z",
    ),
    ("globex", "carol"): ParticipantRow(
        tenant="globex",
        participant_id="carol",
        version=4,  # c-10, c-11, c-13, c-14 (c-12 decided on version 1: conflict)
        display_name="Carol",
        avatar_url="https://img.example/carol.png",  # v1 update
        attributes={},  # v1 update emptied them
        balance=6,  # 10 - 4
        total_earned=10,
        total_spent=4,
        created_at="2025-03-01T09:09:00Z",
        last_seen_at="2025-03-01T09:13:00Z",
    ),
}


def entry(tx: str, kind: str, amount: int, after: int, reason: Any, meta: dict, at: str) -> dict:
    return {
        "id": tx,
        "type": kind,
        "amount": amount,
        "balance_after": after,
        "reason": reason,
        "metadata": meta,
        "created_at": f"2025-03-01T{at}:00Z",
    }


EXPECTED_LEDGERS = {  # newest first, as the API pages them
    ("acme", "alice"): [
        entry("tx-a3", "deduct", -20, 50, "shop", {"order": "o-1"}, "09:08"),  # v2
        entry("tx-a2", "deduct", -30, 70, "shop", {}, "09:03"),  # v1: metadata {}
        entry("tx-a1", "award", 100, 100, "signup", {}, "09:01"),  # v1: metadata {}
    ],
    ("acme", "bob"): [
        entry("tx-b2", "award", 25, 75, None, {}, "09:05"),  # v1
        entry("tx-b1", "award", 50, 50, "quest", {"campaign": "spring"}, "09:04"),  # v2
    ],
    ("globex", "carol"): [
        entry("tx-c2", "deduct", -4, 6, None, {}, "09:13"),  # v1
        entry("tx-c1", "award", 10, 10, "welcome", {}, "09:12"),  # v1
    ],
}

CHECKED_FIELDS = (
    "tenant",
    "participant_id",
    "version",
    "display_name",
    "avatar_url",
    "attributes",
    "balance",
    "total_earned",
    "total_spent",
    "rewards_claimed",
    "is_active",
    "created_at",
    "last_seen_at",
)


def fields_of(row: ParticipantRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in CHECKED_FIELDS}


EXPECTED_STATUS = {f"c-{n:02d}": "applied" for n in range(1, 18)} | {
    "c-07": "duplicate",
    "c-12": "conflict",
}


# --------------------------------------------------------------------------------------------
# The fixture really is in the old format


def test_the_fixture_has_the_commit_envelope_with_old_event_versions() -> None:
    lines = [json.loads(line) for line in fixture_lines()]
    assert len(lines) == 17
    schema = commit_schema()
    envelope = copy.deepcopy(schema)
    del envelope["properties"]["events"]["items"]["allOf"]  # the per-type data rules
    for line in lines:
        jsonschema.validate(line, envelope)
    events = [e for line in lines for e in line["events"]]
    old_points = [
        e for e in events if e["type"] in ("PointsAwarded", "PointsDeducted") and e["version"] == 1
    ]
    updates = [e for e in events if e["type"] == "ParticipantProfileUpdated"]
    old_updates = [e for e in updates if e["version"] < 3]
    assert len(old_points) == 7 and all("metadata" not in e["data"] for e in old_points)
    assert [e["version"] for e in updates] == [1, 2, 1, 2, 2, 3]
    v1 = [e for e in old_updates if e["version"] == 1]
    assert all("fields" in e["data"] and "changes" not in e["data"] for e in v1)
    v2_maps = [e for e in old_updates if "attributes" in e["data"].get("changes", {})]
    assert len(v2_maps) == 2 and all(e["version"] == 2 for e in v2_maps)
    assert any(e["version"] == 2 for e in events)  # current events mixed in
    # The current schema rejects exactly the lines carrying an old event.
    validator = jsonschema.Draft202012Validator(schema)
    rejected = [line["commit_id"] for line in lines if not validator.is_valid(line)]
    current = {name: cls.class_version for name, cls in EVENT_CLASSES.items()}
    old_ids = {
        line["commit_id"]
        for line in lines
        if any(e["version"] < current[e["type"]] for e in line["events"])
    }
    assert {
        line["commit_id"]
        for line in lines
        if any(e in old_points or e in old_updates for e in line["events"])
    } <= old_ids
    assert set(rejected) == old_ids


# --------------------------------------------------------------------------------------------
# Replaying it


def sqlite_log_of_fixture(tmp_path: Path) -> str:
    """The lines as records of the embedded log, stored as they are; the log file's path."""
    path = str(tmp_path / "log.db")
    recorder = open_log_recorder(path)
    for line in fixture_lines():
        commit_id = json.loads(line)["commit_id"]
        recorder.insert_events([StoredEvent(commit_id, 1, "gamify.commit", line)])
    recorder.datastore.close()
    return path


async def replay_sqlite_log(tmp_path: Path, database_url: str) -> int:
    """The embedded log of the lines, rebuilt by `gamify replay`'s replay()."""
    source = SqliteLogSource(sqlite_log_of_fixture(tmp_path), TOPIC)
    try:
        result = await replay(
            ReplayOptions(
                database_url=database_url,
                topic=TOPIC,
                new_source=lambda: source,
                end_offsets=source.end_offsets,
                out=io.StringIO(),
            )
        )
    finally:
        source.close()
    assert result.differences == []
    return result.commits


async def project_sqlite_log(tmp_path: Path, db: Database) -> int:
    """The embedded log of the lines, projected by the live projector's runner up to its end."""
    source = SqliteLogSource(sqlite_log_of_fixture(tmp_path), TOPIC)
    try:
        store = participant_store(db)
        await asyncio.to_thread(store.create_table)
        stats = await runner.run(source, store, asyncio.Event(), until=await source.end_offsets())
    finally:
        source.close()
    return stats.records


@pytest.mark.parametrize("reader", ["replay", "runner"])
async def test_an_old_format_log_replays_into_the_hand_computed_read_models(
    reader: str, database_url: str, db: Database, tmp_path: Path
) -> None:
    if reader == "replay":
        replayed = await replay_sqlite_log(tmp_path, database_url)
    else:
        replayed = await project_sqlite_log(tmp_path, db)
    assert replayed == 17

    queries = ParticipantQueries(db)
    assert queries.next_offset(TOPIC, 0) == 17
    for (tenant, pid), expected in EXPECTED_ROWS.items():
        found = queries.participant(tenant, pid)
        assert found is not None, (tenant, pid)
        assert fields_of(found) == fields_of(expected)
        page = queries.transactions(tenant, pid, 1, 100)
        assert page.total == len(EXPECTED_LEDGERS[(tenant, pid)])
        assert page.entries == EXPECTED_LEDGERS[(tenant, pid)]
    assert queries.participant("acme", "carol") is None  # tenants stay apart
    assert queries.participant("globex", "alice") is None

    for commit_id, status in EXPECTED_STATUS.items():
        outcome = queries.outcome(commit_id)
        assert outcome is not None and outcome.status == status, (commit_id, outcome)
    # Idempotent retries answer with the events upcast to the current versions, read back from
    # the log at the outcome's position (the outcome keeps no copy of them).
    log = SqliteLogReader(str(tmp_path / "log.db"))  # written by sqlite_log_of_fixture
    first = queries.idempotent("acme", "alice", "alice-award-1")
    assert first is not None and first.commit_id == "c-02"
    assert await logged_events(log, first) == [
        {
            "type": "PointsAwarded",
            "version": 3,
            "data": {
                "transaction_id": "tx-a1",
                "amount": 100,
                "balance_after": 100,
                "reason": "signup",
                "metadata": {},
                "base_amount": 100,
                "multiplier": None,
                "expires_at": None,
            },
        }
    ]
    bob = queries.idempotent("acme", "bob", "bob-award-2")
    assert bob is not None and bob.commit_id == "c-06"  # not the duplicate c-07
    update = queries.outcome("c-03")
    assert update is not None and await logged_events(log, update) == [
        {
            "type": "ParticipantProfileUpdated",
            "version": 3,
            "data": {
                "changes": {"display_name": "Alice A."},
                "attributes_replaced": True,
                "attributes_set": {"team": "blue", "level": 1},
                "attributes_removed": [],
            },
        }
    ]
    log.close()

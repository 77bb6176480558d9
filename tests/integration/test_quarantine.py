"""Records the projector cannot apply are quarantined and projection goes on (SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from pathlib import Path

import orjson
import pytest
from eventsourcing.sqlite import SQLiteDatastore

from projections.db import Database, open_database, rows
from projections.participants.quarantine import QuarantineQueries
from projections.participants.queries import ParticipantQueries
from projections.participants.store import ParticipantStore, participant_store
from projections.participants.stream import ParticipantStream
from projections.streams import STREAMS
from schemas.codec import encode
from schemas.events import Commit, PointsAwarded
from schemas.log import LogRecord
from tests.builders import TOPIC, award_commit, records


def with_reason(commit: Commit, reason: str) -> Commit:
    """``commit`` with the reason of its PointsAwarded replaced (e.g. by text with a NUL)."""
    events = tuple(
        dataclasses.replace(e, reason=reason) if isinstance(e, PointsAwarded) else e
        for e in commit.events
    )
    return dataclasses.replace(commit, events=events)


def fold_breaking(commit: Commit) -> bytes:
    """``commit``'s bytes with an award amount the fold cannot add ("x"): it raises TypeError."""
    raw = orjson.loads(encode(commit))
    raw["events"][-1]["data"]["amount"] = "x"
    return orjson.dumps(raw)


def log(*values: bytes, start: int = 0) -> list[LogRecord]:
    return [LogRecord(0, start + i, v) for i, v in enumerate(values)]


def quarantined(db: Database) -> list[tuple[object, ...]]:
    with db.transaction(commit=False) as c:
        c.execute(
            "SELECT log_offset, commit_id, tenant, participant_id, kind, status, digest "
            "FROM quarantined_records ORDER BY log_offset"
        )
        return rows(c)


def test_bytes_that_are_not_json_are_quarantined_and_the_records_around_them_apply(
    store: ParticipantStore, queries: ParticipantQueries, db: Database
) -> None:
    garbage = b"\x00\xffnot json"
    batch = log(
        encode(award_commit("u1", 0, 10, 10, cid="a")),
        garbage,
        encode(award_commit("u1", 1, 5, 15, cid="b")),
    )
    stats = store.apply_batch(TOPIC, 0, batch)
    assert (stats.applied, stats.quarantined) == (2, {"decode": 1})
    assert store.next_offsets(TOPIC, [0]) == {0: 3}
    row = queries.participant("t", "u1")
    assert row is not None and row.balance == 15
    digest = hashlib.sha256(garbage).hexdigest()
    assert quarantined(db) == [(1, None, None, None, "decode", "quarantined", digest)]
    entry = QuarantineQueries(db).find("0:1")
    assert entry is not None and entry.size == len(garbage) and "not a gamify commit" in entry.error
    assert QuarantineQueries(db).open_count() == 1


def test_a_commit_whose_events_make_the_fold_raise_is_quarantined_alone(
    store: ParticipantStore, queries: ParticipantQueries, db: Database
) -> None:
    poison = award_commit("u1", 1, 5, 15, cid="bad", key="k-bad")
    values = [
        encode(award_commit("u1", 0, 10, 10, cid="a")),
        encode(award_commit("u2", 0, 1, 1, cid="other")),
        fold_breaking(poison),
        # decided after the poison failed: on the version it left unchanged
        encode(award_commit("u1", 1, 7, 17, cid="after")),
        *[encode(award_commit("u3", v, 1, v + 1, cid=f"u3-{v}")) for v in range(20)],
    ]
    stats = store.apply_batch(TOPIC, 0, log(*values))
    assert (stats.applied, stats.quarantined) == (23, {"engine": 1})
    assert store.next_offsets(TOPIC, [0]) == {0: len(values)}
    row = queries.participant("t", "u1")
    assert row is not None and (row.balance, row.version) == (17, 2)
    assert queries.participant("t", "u3").balance == 20  # type: ignore[union-attr]
    assert quarantined(db)[0][:6] == (2, "bad", "t", "u1", "engine", "quarantined")
    assert queries.outcome("bad").status == "quarantined"  # type: ignore[union-attr]
    keyed = queries.idempotent("t", "u1", "k-bad")
    assert keyed is not None and (keyed.commit_id, keyed.status) == ("bad", "quarantined")
    entry = QuarantineQueries(db).find("bad")
    assert entry is not None and entry.error_type == "builtins.TypeError"


def test_text_with_a_nul_character_is_quarantined_the_same_way_on_every_store(
    store: ParticipantStore, queries: ParticipantQueries, db: Database
) -> None:
    poison = with_reason(award_commit("u1", 0, 10, 10, cid="nul"), "a\x00b")
    batch = records(poison, award_commit("u1", 0, 3, 3, cid="next"))
    stats = store.apply_batch(TOPIC, 0, batch)
    assert (stats.applied, stats.quarantined) == (1, {"value": 1})
    assert quarantined(db)[0][:6] == (0, "nul", "t", "u1", "value", "quarantined")
    assert queries.outcome("nul").status == "quarantined"  # type: ignore[union-attr]
    assert queries.participant("t", "u1").balance == 3  # type: ignore[union-attr]
    entry = QuarantineQueries(db).find("nul")
    assert entry is not None and "NUL" in entry.error and "\x00" not in entry.error


def test_ids_with_control_characters_are_stored_sanitised_and_get_no_outcome(
    store: ParticipantStore, db: Database
) -> None:
    poison = award_commit("p\x00q", 0, 1, 1, cid="c\x00d", tenant="t\u202e")
    store.apply_batch(TOPIC, 0, records(poison))
    assert quarantined(db)[0][1:5] == ("c\\x00d", "t\\u202e", "p\\x00q", "value")
    with db.transaction(commit=False) as c:
        c.execute("SELECT COUNT(*) FROM commit_outcomes")
        assert rows(c)[0][0] == 0


def test_a_redelivered_copy_of_a_quarantined_commit_is_not_quarantined_twice(
    store: ParticipantStore, db: Database
) -> None:
    poison = fold_breaking(award_commit("u1", 0, 10, 10, cid="bad"))
    store.apply_batch(TOPIC, 0, log(poison))
    stats = store.apply_batch(TOPIC, 0, log(poison, start=1))  # a producer retry's second copy
    assert (stats.redelivered, stats.quarantined) == (1, {})
    assert [r[0] for r in quarantined(db)] == [0]


def test_a_missing_table_is_an_infrastructure_fault_retried_not_quarantined(
    store: ParticipantStore, queries: ParticipantQueries, db: Database
) -> None:
    with db.transaction(commit=True) as c:
        c.execute("DROP TABLE points_ledger")  # as if a swap were half done
    batch = records(award_commit("u1", 0, 10, 10, cid="a"))
    with pytest.raises(Exception, match="points_ledger"):
        store.apply_batch(TOPIC, 0, batch)
    assert store.next_offsets(TOPIC, [0]) in ({}, {0: 0})
    assert quarantined(db) == []
    store.create_table()  # the fault is gone: the same batch applies
    assert store.apply_batch(TOPIC, 0, batch).applied == 1
    assert queries.participant("t", "u1").balance == 10  # type: ignore[union-attr]


def test_retry_applies_a_quarantined_commit_once_its_stream_is_known_or_records_a_conflict(
    store: ParticipantStore,
    queries: ParticipantQueries,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    later = dataclasses.replace(award_commit("u2", 0, 4, 4, cid="new", key="k"), stream="later")
    stale = dataclasses.replace(award_commit("u1", 0, 9, 9, cid="stale"), stream="later")
    batch = records(later, stale, award_commit("u1", 0, 1, 1, cid="moved-on"))
    assert store.apply_batch(TOPIC, 0, batch).quarantined == {"decode": 2}
    assert queries.idempotent("t", "u2", "k").status == "quarantined"  # type: ignore[union-attr]
    monkeypatch.setitem(STREAMS, "later", ParticipantStream)  # the upgrade that knows "later"
    assert store.retry(TOPIC, batch[0]) == "applied"
    assert store.retry(TOPIC, batch[1]) == "conflict"
    assert queries.participant("t", "u2").balance == 4  # type: ignore[union-attr]
    assert queries.participant("t", "u1").balance == 1  # type: ignore[union-attr]
    keyed = queries.idempotent("t", "u2", "k")
    assert keyed is not None and (keyed.commit_id, keyed.status) == ("new", "applied")
    assert queries.outcome("stale").status == "conflict"  # type: ignore[union-attr]
    entries = QuarantineQueries(db).entries()
    assert [(e.status, e.verdict) for e in entries] == [
        ("retried", "applied"),
        ("retried", "conflict"),
    ]
    assert QuarantineQueries(db).open_count() == 0
    assert store.next_offsets(TOPIC, [0]) == {0: 3}


def test_retrying_a_record_that_still_fails_changes_nothing(
    store: ParticipantStore, db: Database
) -> None:
    batch = log(fold_breaking(award_commit("u1", 0, 10, 10, cid="bad")))
    store.apply_batch(TOPIC, 0, batch)
    with pytest.raises(TypeError):
        store.retry(TOPIC, batch[0])
    assert quarantined(db)[0][5] == "quarantined"


def test_acknowledged_records_no_longer_count_as_open(
    store: ParticipantStore, db: Database
) -> None:
    store.apply_batch(TOPIC, 0, log(b"garbage"))
    quarantine = QuarantineQueries(db)
    entry = quarantine.find("0")
    assert entry is not None and quarantine.open_count() == 1
    quarantine.acknowledge(entry)
    assert quarantine.open_count() == 0
    assert quarantine.entries()[0].status == "acknowledged"


def test_postgresql_refusing_a_value_is_quarantined_even_without_the_value_check(
    postgres_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The backstop: the database's own refusal (psycopg DataError) quarantines the record."""
    monkeypatch.setattr("projections.participants.store.check_storable", lambda value: None)
    db = open_database(postgres_schema_url)
    try:
        store = participant_store(db)
        store.create_table()
        poison = with_reason(award_commit("u1", 0, 10, 10, cid="nul"), "a\x00b")
        good = [award_commit("u2", v, 1, v + 1, cid=f"g{v}") for v in range(6)]
        stats = store.apply_batch(TOPIC, 0, records(*good[:3], poison, *good[3:]))
        assert (stats.applied, stats.quarantined) == (6, {"store": 1})
        found = quarantined(db)
        assert found[0][:6] == (3, "nul", "t", "u1", "store", "quarantined")
        entry = QuarantineQueries(db).find("nul")
        assert entry is not None and entry.error_type.startswith("psycopg")
        assert ParticipantQueries(db).participant("t", "u2").balance == 6  # type: ignore[union-attr]
    finally:
        db.close()


def test_a_locked_sqlite_database_is_retried_not_quarantined(tmp_path: Path) -> None:
    """Another writer holding the lock past the busy timeout: the batch raises and applies later."""
    path = tmp_path / "locked.db"
    db = Database("sqlite", SQLiteDatastore(str(path), lock_timeout=0.2))
    store = participant_store(db)
    store.create_table()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # holds the write lock
        batch = records(award_commit("u1", 0, 10, 10, cid="a"))
        with pytest.raises(Exception, match="locked"):
            store.apply_batch(TOPIC, 0, batch)
        other.execute("ROLLBACK")
        assert quarantined(db) == []
        assert store.apply_batch(TOPIC, 0, batch).applied == 1
        assert store.next_offsets(TOPIC, [0]) == {0: 1}
    finally:
        other.close()
        db.close()

"""The participant store contract, for SQLite and PostgreSQL: exactly-once by tracking."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from projections.db import Database, rows
from projections.participants.queries import ParticipantQueries
from projections.participants.store import ParticipantStore, participant_store
from schemas.log import LogRecord
from services.adapters.read_model import EventsNotFound, logged_events
from tests.builders import TOPIC, award_commit, records


def five_awards() -> list[LogRecord]:
    return records(*[award_commit("u1", v, 10, 10 * (v + 1), cid=f"c{v}") for v in range(5)])


def test_a_batch_updates_rows_ledger_and_position_together(
    store: ParticipantStore, queries: ParticipantQueries
) -> None:
    stats = store.apply_batch(TOPIC, 0, five_awards())
    assert stats.applied == 5
    row = queries.participant("t", "u1")
    assert row is not None and (row.balance, row.version) == (50, 5)
    assert queries.transactions("t", "u1", 1, 100).total == 5
    assert store.next_offsets(TOPIC, [0, 1]) == {0: 5}


def test_redelivered_records_are_skipped_and_change_nothing(
    store: ParticipantStore, queries: ParticipantQueries
) -> None:
    batch = five_awards()
    store.apply_batch(TOPIC, 0, batch[:3])
    stats = store.apply_batch(TOPIC, 0, batch)  # the consumer re-delivers from offset 0
    assert (stats.redelivered, stats.applied) == (3, 2)
    row = queries.participant("t", "u1")
    assert row is not None and row.balance == 50
    assert queries.transactions("t", "u1", 1, 100).total == 5
    assert store.apply_batch(TOPIC, 0, batch).redelivered == 5


def test_the_same_commit_appended_twice_is_applied_once(
    store: ParticipantStore, queries: ParticipantQueries
) -> None:
    first = award_commit("u1", 0, 10, 10, cid="same")
    stats = store.apply_batch(TOPIC, 0, records(first, first))
    assert (stats.applied, stats.redelivered) == (1, 1)
    assert store.apply_batch(TOPIC, 0, records(first, start=2)).redelivered == 1
    row = queries.participant("t", "u1")
    assert row is not None and row.balance == 10


def test_a_stale_commit_is_recorded_as_a_conflict(
    store: ParticipantStore, queries: ParticipantQueries
) -> None:
    a = award_commit("u1", 0, 10, 10, cid="a")
    b = award_commit("u1", 0, 5, 5, cid="b")  # decided on the same version as a
    store.apply_batch(TOPIC, 0, records(a, b))
    assert queries.outcome("a").status == "applied"  # type: ignore[union-attr]
    assert queries.outcome("b").status == "conflict"  # type: ignore[union-attr]
    row = queries.participant("t", "u1")
    assert row is not None and row.balance == 10


class RecordsLog:
    """A LogReader (projections.past) over a list of records."""

    def __init__(self, found: list[LogRecord]) -> None:
        self.found = found

    async def read_at(self, partition: int, offsets: Sequence[int]) -> list[LogRecord]:
        return [r for r in self.found if r.partition == partition and r.offset in offsets]


async def test_a_reused_idempotency_key_is_a_duplicate_of_the_first_commit(
    store: ParticipantStore, queries: ParticipantQueries
) -> None:
    a = award_commit("u1", 0, 10, 10, cid="a", key="k")
    b = award_commit("u1", 1, 10, 20, cid="b", key="k")
    store.apply_batch(TOPIC, 0, records(a))
    store.apply_batch(TOPIC, 0, records(b, start=1))
    assert queries.outcome("b").status == "duplicate"  # type: ignore[union-attr]
    original = queries.idempotent("t", "u1", "k")
    assert original is not None and original.commit_id == "a"
    # The outcome keeps the verdict and the position; the events are read back from the log.
    assert original.events is None and original.position == (0, 0)
    events = await logged_events(RecordsLog(records(a)), original)
    assert events[-1]["data"]["balance_after"] == 10
    with pytest.raises(EventsNotFound):  # not the commit at that position
        await logged_events(RecordsLog(records(b)), original)


def test_idempotency_keys_are_scoped_to_tenant_and_participant(
    store: ParticipantStore, queries: ParticipantQueries
) -> None:
    store.apply_batch(
        TOPIC,
        0,
        records(
            award_commit("u1", 0, 10, 10, cid="a", key="k"),
            award_commit("u2", 0, 10, 10, cid="b", key="k"),
            award_commit("u1", 0, 10, 10, cid="c", key="k", tenant="other"),
        ),
    )
    assert [queries.outcome(c).status for c in "abc"] == ["applied"] * 3  # type: ignore[union-attr]


def test_set_wise_reads_answer_as_the_single_reads_do(
    store: ParticipantStore, queries: ParticipantQueries
) -> None:
    """The inbound waves read states, keys and verdicts of many participants at once."""
    store.apply_batch(
        TOPIC,
        0,
        records(
            award_commit("u1", 0, 10, 10, cid="a", key="k"),
            award_commit("u2", 0, 10, 10, cid="b", key="k"),
            award_commit("u1", 0, 10, 10, cid="c", key="k", tenant="other"),
            award_commit("u1", 0, 5, 5, cid="d", key="j"),  # stale: a conflict
            *[award_commit(f"m{i:03d}", 0, 1, 1, cid=f"m{i}", key=f"k{i}") for i in range(450)],
        ),
    )
    ids = ["u1", "u2", "nobody", "u1", *(f"m{i:03d}" for i in range(450))]
    rows = queries.participants("t", ids)
    assert sorted(rows) == sorted(set(ids) - {"nobody"})  # more than one statement's worth
    assert rows["u1"] == queries.participant("t", "u1")
    assert queries.participants("other", ["u1", "u2"]) == {"u1": queries.participant("other", "u1")}
    assert queries.participants("t", []) == {}
    found = queries.outcomes(["a", "d", "missing", *(f"m{i}" for i in range(450))])
    assert found["a"] == queries.outcome("a") and found["d"].status == "conflict"
    assert "missing" not in found and len(found) == 452
    pairs = [("u1", "k"), ("u2", "k"), ("u1", "j"), ("u1", "other-key"),
             *((f"m{i:03d}", f"k{i}") for i in range(450))]  # fmt: skip
    keyed = queries.idempotent_many("t", pairs)
    assert keyed[("u1", "k")] == queries.idempotent("t", "u1", "k")
    assert keyed[("u2", "k")].commit_id == "b"
    assert ("u1", "j") not in keyed, "a conflict leaves its key free for the retry"
    assert ("u1", "other-key") not in keyed and len(keyed) == 452
    assert queries.idempotent_many("other", [("u1", "k")])[("u1", "k")].commit_id == "c"
    if queries.inline:
        assert queries.participants("t", ids, inline=True) == rows
        assert queries.idempotent_many("t", pairs, inline=True) == keyed


def test_an_unreadable_record_is_kept_aside_and_the_position_moves_on(
    store: ParticipantStore, db: Database
) -> None:
    bad = [LogRecord(0, 0, b"garbage"), *records(award_commit("u1", 0, 1, 1, cid="x"), start=1)]
    stats = store.apply_batch(TOPIC, 0, bad)
    assert (stats.quarantined, stats.applied) == ({"decode": 1}, 1)
    with db.transaction(commit=False) as c:
        c.execute("SELECT log_offset, error FROM quarantined_records")
        [(offset, error)] = rows(c)
    assert offset == 0 and "not a gamify commit" in error
    assert store.next_offsets(TOPIC, [0]) == {0: 2}


class Crashing:
    """Fails on the third record of a batch, as a crash (an I/O error) mid-transaction would."""

    def _read(self, record, failure=None):  # type: ignore[no-untyped-def]
        if record.offset == 2:
            raise OSError("crash")
        return super()._read(record, failure)


def test_a_crash_mid_batch_writes_nothing_and_the_retry_applies_everything_once(
    db: Database, store: ParticipantStore, queries: ParticipantQueries
) -> None:
    crashing = type("CrashingStore", (Crashing, type(store)), {})(db)
    with pytest.raises(OSError, match="crash"):
        crashing.apply_batch(TOPIC, 0, five_awards())
    assert queries.participant("t", "u1") is None
    assert crashing.next_offsets(TOPIC, [0]) == {}
    store.apply_batch(TOPIC, 0, five_awards())
    row = queries.participant("t", "u1")
    assert row is not None and row.balance == 50


def test_partitions_keep_separate_positions(store: ParticipantStore) -> None:
    store.apply_batch(TOPIC, 0, records(award_commit("u1", 0, 1, 1, cid="a")))
    store.apply_batch(TOPIC, 3, records(award_commit("u2", 0, 1, 1, cid="b"), start=7, partition=3))
    assert store.next_offsets(TOPIC, [0, 1, 3]) == {0: 1, 3: 8}


def test_two_workers_applying_overlapping_batches_at_once_apply_each_commit_once(
    db: Database, store: ParticipantStore, queries: ParticipantQueries
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    commits = [award_commit(f"u{i % 7}", i // 7, 1, i // 7 + 1, cid=f"c{i}") for i in range(140)]
    log = records(*commits)
    other = participant_store(db)  # a second projector process would have its own store
    # Each worker read the position (0) before the other moved it, as in a rebalance.
    slices = [log[:60], log[:100], log[:140], log[:30], log[:120], log[:140], log[:10], log[:90]]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for future in [
            pool.submit((store if i % 2 else other).apply_batch, TOPIC, 0, part)
            for i, part in enumerate(slices)
        ]:
            future.result()
    assert sum(queries.participant("t", f"u{i}").balance for i in range(7)) == 140  # type: ignore[union-attr]
    assert sum(queries.transactions("t", f"u{i}", 1, 100).total for i in range(7)) == 140
    assert store.next_offsets(TOPIC, [0]) == {0: 140}

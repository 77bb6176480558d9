"""OwnAppends: a process's acknowledged appends reach its projector only in log order."""

from __future__ import annotations

import pytest

from projections.sources.own_appends import OwnAppendMismatch, OwnAppends
from schemas.log import LogRecord


def rec(partition: int, offset: int, value: bytes | None = None) -> LogRecord:
    return LogRecord(partition, offset, value if value is not None else f"v{offset}".encode())


def offsets(out: dict[int, list[LogRecord]]) -> dict[int, list[int]]:
    return {p: [r.offset for r in rs] for p, rs in out.items()}


def test_an_own_append_at_the_next_offset_is_handed_out_without_a_fetch() -> None:
    own = OwnAppends()
    own.assigned({0: 5})
    own.offer(0, 5, b"v5")
    own.offer(0, 6, b"v6")
    assert own.has_ready()
    assert own.merge({}, 100) == {0: [rec(0, 5), rec(0, 6)]}
    assert own.next == {0: 7} and own.handed == 2
    assert own.merge({}, 100) == {}


def test_an_own_append_after_a_gap_waits_for_the_fetch_to_fill_it() -> None:
    own = OwnAppends()
    own.assigned({0: 5})
    own.offer(0, 7, b"v7")  # offsets 5 and 6 came from another producer
    assert not own.has_ready()
    assert own.merge({}, 100) == {}
    assert offsets(own.merge({0: [rec(0, 5)]}, 100)) == {0: [5]}
    assert offsets(own.merge({0: [rec(0, 6)]}, 100)) == {0: [6, 7]}


def test_fetched_records_already_handed_out_are_dropped_and_checked() -> None:
    own = OwnAppends()
    own.assigned({0: 0})
    own.offer(0, 0, b"v0")
    own.offer(0, 1, b"v1")
    assert offsets(own.merge({}, 100)) == {0: [0, 1]}
    assert offsets(own.merge({0: [rec(0, 0), rec(0, 1), rec(0, 2)]}, 100)) == {0: [2]}
    assert not own._unconfirmed


def test_other_bytes_on_the_log_than_acknowledged_stop_the_feed() -> None:
    own = OwnAppends()
    own.assigned({0: 0})
    own.offer(0, 0, b"mine")
    own.merge({}, 100)
    with pytest.raises(OwnAppendMismatch):
        own.merge({0: [rec(0, 0, b"theirs")]}, 100)
    assert not own.enabled
    own.offer(0, 1, b"v1")
    assert own.merge({}, 100) == {}


def test_fetched_records_overtaking_waiting_appends_replace_them() -> None:
    own = OwnAppends()
    own.assigned({0: 0})
    own.offer(0, 1, b"v1")
    assert offsets(own.merge({0: [rec(0, 0), rec(0, 1), rec(0, 2)]}, 100)) == {0: [0, 1, 2]}
    assert own.merge({}, 100) == {}


def test_partitions_not_assigned_here_are_left_to_the_fetch() -> None:
    own = OwnAppends()
    own.assigned({0: 0, 1: 0})
    own.revoked([1])
    own.offer(1, 0, b"v0")
    own.offer(2, 0, b"v0")
    assert own.merge({}, 100) == {}
    own.offer(0, 0, b"v0")
    own.revoked([0])
    own.assigned({0: 3})  # reassigned: the store's position decides, older offers are stale
    assert own.merge({}, 100) == {}


def test_max_records_bounds_what_one_read_hands_out() -> None:
    own = OwnAppends()
    own.assigned({0: 0})
    for offset in range(5):
        own.offer(0, offset, f"v{offset}".encode())
    assert offsets(own.merge({}, 3)) == {0: [0, 1, 2]}
    assert offsets(own.merge({}, 3)) == {0: [3, 4]}


def test_offers_beyond_the_limit_are_left_to_the_fetch() -> None:
    own = OwnAppends(limit=2)
    own.assigned({0: 0})
    for offset in range(4):
        own.offer(0, offset, f"v{offset}".encode())
    assert offsets(own.merge({}, 100)) == {0: [0, 1]}
    assert offsets(own.merge({0: [rec(0, 2), rec(0, 3)]}, 100)) == {0: [2, 3]}

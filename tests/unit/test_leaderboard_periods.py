"""Leaderboards without a database: period keys, the scores a commit writes, ranking rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from projections.leaderboards import (
    Board,
    LeaderboardQueries,
    change_of,
    default_period,
    metric_of,
    percentile,
    ranking_key,
)
from projections.participants.features.leaderboards import (
    PENDING,
    expand_scores,
    period_key,
    period_keys,
    previous_period_key,
)
from projections.participants.projector import apply_commit
from schemas.events import (
    Causation,
    Commit,
    Event,
    EventTracked,
    ParticipantRegistered,
    PointsAwarded,
    PointsDeducted,
)


def at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


# --------------------------------------------------------------------------------------------
# period keys


def test_the_five_keys_of_an_instant() -> None:
    assert period_keys("2026-02-14T10:00:00Z") == [
        ("all_time", "all"),
        ("yearly", "2026"),
        ("monthly", "2026-02"),
        ("weekly", "2026-W07"),
        ("daily", "2026-02-14"),
    ]


@pytest.mark.parametrize(
    ("stamp", "week"),
    [
        ("2026-01-01T00:00:00Z", "2026-W01"),  # a Thursday: its week is week 1 of 2026
        ("2025-12-29T00:00:00Z", "2026-W01"),  # the Monday of that week, still in 2025
        ("2025-12-28T23:59:59Z", "2025-W52"),  # the Sunday before
        ("2027-01-01T12:00:00Z", "2026-W53"),  # a Friday: it belongs to 2026's last week
        ("2027-01-03T23:59:59Z", "2026-W53"),  # the Sunday ending it
        ("2027-01-04T00:00:00Z", "2027-W01"),  # the next Monday opens 2027
        ("2023-01-01T08:00:00Z", "2022-W52"),  # a Sunday in a year that started on Sunday
        ("2021-01-01T08:00:00Z", "2020-W53"),
        ("2026-02-09T00:00:00Z", "2026-W07"),  # Monday starts a week ...
        ("2026-02-08T23:59:59Z", "2026-W06"),  # ... and Sunday ends the one before
    ],
)
def test_iso_weeks_across_year_boundaries(stamp: str, week: str) -> None:
    assert dict(period_keys(stamp))["weekly"] == week


def test_year_month_and_day_boundaries_are_utc() -> None:
    assert dict(period_keys("2025-12-31T23:59:59Z")) == {
        "all_time": "all",
        "yearly": "2025",
        "monthly": "2025-12",
        "weekly": "2026-W01",
        "daily": "2025-12-31",
    }
    assert dict(period_keys("2026-01-01T00:00:00Z"))["monthly"] == "2026-01"
    # an offset time is converted to UTC first: 23:30 in New York is the next day in UTC
    assert dict(period_keys("2026-02-28T23:30:00-05:00")) == {
        "all_time": "all",
        "yearly": "2026",
        "monthly": "2026-03",
        "weekly": "2026-W09",
        "daily": "2026-03-01",
    }
    assert period_key("daily", at("2026-03-01T01:00:00+02:00")) == "2026-02-28"


def test_an_unreadable_time_only_counts_for_all_time() -> None:
    assert period_keys("yesterday") == [("all_time", "all")]
    assert period_keys("") == [("all_time", "all")]


@pytest.mark.parametrize(
    ("period", "stamp", "previous"),
    [
        ("daily", "2026-03-01T10:00:00Z", "2026-02-28"),
        ("daily", "2024-03-01T10:00:00Z", "2024-02-29"),
        ("daily", "2026-01-01T00:00:00Z", "2025-12-31"),
        ("weekly", "2026-02-14T10:00:00Z", "2026-W06"),
        ("weekly", "2026-01-05T00:00:00Z", "2026-W01"),
        ("weekly", "2026-01-01T00:00:00Z", "2025-W52"),
        ("weekly", "2027-01-04T00:00:00Z", "2026-W53"),
        ("monthly", "2026-03-31T10:00:00Z", "2026-02"),
        ("monthly", "2026-01-15T10:00:00Z", "2025-12"),
        ("yearly", "2026-01-01T00:00:00Z", "2025"),
        ("all_time", "2026-02-14T10:00:00Z", None),
    ],
)
def test_the_previous_period(period: str, stamp: str, previous: str | None) -> None:
    assert previous_period_key(period, at(stamp)) == previous


# --------------------------------------------------------------------------------------------
# what a commit writes


def commit(*events: Event, version: int = 0, recorded_at: str = "2026-02-14T10:00:00Z") -> Commit:
    return Commit("c", "t", "u1", version, recorded_at, Causation("x"), events)


def score_writes(writes: tuple) -> list[tuple]:
    """The score rows a commit's writes become (the store's flush expands pending adds)."""
    return expand_scores(w.params for w in writes if w.statement == PENDING)


def test_an_award_adds_its_amount_to_points_in_every_period_and_keeps_the_ledger() -> None:
    verdict = apply_commit(
        None,
        commit(ParticipantRegistered(auto_created=True), PointsAwarded("tx1", 25, 25)),
        key_used=False,
    )
    assert [w.statement for w in verdict.writes][0] == "ledger_insert"
    assert score_writes(verdict.writes) == [
        ("t", "points", period, key, "u1", 25, "2026-02-14T10:00:00Z")
        for period, key in period_keys("2026-02-14T10:00:00Z")
    ]


def test_a_tracked_event_counts_for_its_name_and_for_all_events() -> None:
    event = EventTracked("e1", "login", {}, "2026-01-01T00:00:00Z")  # occurred_at is not used
    verdict = apply_commit(None, commit(event), key_used=False)
    assert [w.statement for w in verdict.writes][0] == "event_history_insert"
    written = score_writes(verdict.writes)
    assert len(written) == 10
    assert {(p[1], p[3]) for p in written} >= {("event:login", "2026-02-14"), ("events", "all")}
    assert {p[5] for p in written} == {1}
    assert {p[6] for p in written} == {"2026-02-14T10:00:00Z"}


def test_deducts_and_zero_awards_leave_scores_alone() -> None:
    row = apply_commit(None, commit(PointsAwarded("tx1", 10, 10)), key_used=False).row
    later = apply_commit(row, commit(PointsDeducted("tx2", 5, 5), version=1), key_used=False)
    assert score_writes(later.writes) == []
    zero = apply_commit(row, commit(PointsAwarded("tx3", 0, 10), version=1), key_used=False)
    assert score_writes(zero.writes) == []


# --------------------------------------------------------------------------------------------
# ranking


def test_ties_go_to_who_got_there_first_then_to_the_participant_id() -> None:
    rows = [
        ("zoe", 10, "2026-02-14T10:00:00Z"),
        ("bob", 10, "2026-02-14T09:00:00Z"),
        ("amy", 10, "2026-02-14T10:00:00Z"),
        ("cat", 12, "2026-02-14T11:00:00Z"),
        ("dan", 3, "2026-02-14T08:00:00Z"),
    ]
    ranked = sorted(rows, key=lambda r: ranking_key(r[1], r[2], r[0]))
    assert [r[0] for r in ranked] == ["cat", "bob", "amy", "zoe", "dan"]


@pytest.mark.parametrize(
    ("rank", "total", "expected"),
    [(1, 1, 100.0), (1, 1000, 100.0), (1000, 1000, 0.1), (500, 1000, 50.1), (2, 3, 66.7)],
)
def test_percentile(rank: int, total: int, expected: float) -> None:
    assert percentile(rank, total) == expected


def test_change() -> None:
    assert change_of(3, None) == "new"
    assert change_of(3, 5) == "up"
    assert change_of(5, 3) == "down"
    assert change_of(4, 4) == "same"


def test_a_definition_names_its_metric_and_default_period() -> None:
    assert metric_of({}) == "points"
    assert metric_of({"metric": "points", "event_name": "x"}) == "points"
    assert metric_of({"metric": "events", "event_name": "login"}) == "event:login"
    assert metric_of({"metric": "events"}) == "events"
    assert default_period({}) == "all_time"
    assert default_period({"time_window": "weekly"}) == "weekly"


# --------------------------------------------------------------------------------------------
# the top-N cache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_top_n_cache_keeps_an_answer_while_the_version_holds_and_for_30s_at_most() -> None:
    clock = Clock()
    queries = LeaderboardQueries(None, clock=clock)  # type: ignore[arg-type]
    calls: list[tuple] = []

    def fake_top(*args: object) -> Board:
        calls.append(args)
        return Board("daily", "2026-02-14", (), len(calls))

    queries._top = fake_top  # type: ignore[method-assign]
    now = at("2026-02-14T10:00:00+00:00")
    ask = lambda version: queries.top("t", "points", "daily", now, 20, version=version)  # noqa: E731
    assert ask(((0, 5),)).total == 1
    assert ask(((0, 5),)).total == 1  # cached
    assert ask(((0, 6),)).total == 2  # the projector moved on: read again
    clock.now += 29.9
    assert ask(((0, 6),)).total == 2
    clock.now += 0.2
    assert ask(((0, 6),)).total == 3  # expired
    assert queries.top("t", "points", "daily", now, 20).total == 4  # no version: never cached
    assert queries.top("t", "points", "daily", now, 10, version=((0, 6),)).total == 5
    tomorrow = datetime(2026, 2, 15, 0, 0, 1, tzinfo=UTC)
    assert queries.top("t", "points", "daily", tomorrow, 20, version=((0, 6),)).total == 6


def test_the_cache_is_bounded() -> None:
    queries = LeaderboardQueries(None, clock=Clock(), cache_size=3)  # type: ignore[arg-type]
    queries._top = lambda *a: Board("daily", "k", (), 0)  # type: ignore[method-assign]
    now = at("2026-02-14T10:00:00+00:00")
    for limit in range(1, 10):
        queries.top("t", "points", "daily", now, limit, version=())
    assert len(queries._cache) <= 3

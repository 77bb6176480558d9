"""Streak rules, pure: periods in time zones, grace, freezes, breaks, late ticks, best, at risk."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

import services.participants.features  # noqa: F401 - registers the deciders
from schemas.codec import decode_event
from schemas.events import Event, ParticipantRegistered, StreakBroken, StreakExtended
from schemas.sections import fold
from services.participants.commands import RecordStreak
from services.participants.domain import (
    Env,
    ParticipantState,
    UnknownDefinition,
    decide,
)
from services.participants.engine import Catalog
from services.participants.features import streaks

CODE = "daily_login"


def instant(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def catalog(**definition: Any) -> Catalog:
    body = {"name": "Daily login", "period": "daily", **definition}
    return Catalog(streaks={CODE: {**body, "id": "def-1", "code": CODE}})


class Participant:
    """A participant's state built only through ``decide`` and the shared ``fold``."""

    def __init__(self, cat: Catalog) -> None:
        self.catalog = cat
        self.state: ParticipantState | None = None

    def tick(self, timestamp: str | None, *, now: str = "2030-01-01T00:00:00Z") -> list[Event]:
        env = Env(lambda: "id-1", instant(now), self.catalog)
        events = decide(self.state, RecordStreak("u1", CODE, timestamp), env)
        sections = dict(self.state.sections) if self.state else {}
        for event in events:
            sections = fold(event, sections, env.at)
        version = (self.state.version if self.state else 0) + (1 if events else 0)
        self.state = ParticipantState(version=version, sections=sections)
        return events

    def ticks(self, *timestamps: str) -> list[Event]:
        events: list[Event] = []
        for ts in timestamps:
            events = self.tick(ts)
        return events

    @property
    def streak(self) -> dict[str, Any]:
        assert self.state is not None
        return self.state.sections["streaks"][CODE]  # type: ignore[no-any-return]


def extended(events: list[Event]) -> StreakExtended:
    found = [e for e in events if isinstance(e, StreakExtended)]
    assert len(found) == 1, events
    return found[0]


def broken(events: list[Event]) -> list[StreakBroken]:
    return [e for e in events if isinstance(e, StreakBroken)]


# ---------------------------------------------------------------------------------------------
# The documented sequence, creation, unknown codes


def test_the_documented_sequence_day_same_day_next_day() -> None:
    p = Participant(catalog())
    first = p.tick("2026-02-14T09:00:00Z")
    assert first[0] == ParticipantRegistered(auto_created=True)
    assert extended(first) == StreakExtended(
        code=CODE,
        period="2026-02-14",
        count=1,
        longest=1,
        recorded_at="2026-02-14T09:00:00Z",
        new_record=True,
    )
    assert p.tick("2026-02-14T23:59:59Z") == []  # already recorded: nothing is written
    second = extended(p.tick("2026-02-15T00:00:00Z"))
    assert (second.count, second.longest, second.new_record) == (2, 2, True)
    assert p.streak == {
        "count": 2,
        "longest": 2,
        "period": "2026-02-15",
        "last_recorded_at": "2026-02-15T00:00:00Z",
        "freezes_available": 0,
        "freezes_granted_through": None,
    }


def test_a_tick_without_timestamp_is_at_the_decision_time() -> None:
    p = Participant(catalog())
    event = extended(p.tick(None, now="2026-02-14T10:11:12.900Z"))
    assert (event.period, event.recorded_at) == ("2026-02-14", "2026-02-14T10:11:12Z")


@pytest.mark.parametrize("cat", [Catalog(), catalog()])
def test_an_unknown_or_inactive_streak_is_refused_and_writes_nothing(cat: Catalog) -> None:
    env = Env(lambda: "id-1", instant("2026-02-14T10:00:00Z"), cat)
    with pytest.raises(UnknownDefinition, match="Streak not found: other"):
        decide(None, RecordStreak("u1", "other", None), env)


def test_an_existing_participant_is_not_registered_again() -> None:
    p = Participant(catalog())
    p.state = ParticipantState(version=3)
    assert [type(e) for e in p.tick("2026-02-14T10:00:00Z")] == [StreakExtended]


def test_events_written_before_new_record_existed_still_decode() -> None:
    data = {"code": CODE, "period": "2026-02-14", "count": 1, "longest": 1, "recorded_at": "x"}
    event = decode_event({"type": "StreakExtended", "version": 1, "data": data})
    assert isinstance(event, StreakExtended) and event.new_record is False


# ---------------------------------------------------------------------------------------------
# Daily periods in time zones


@pytest.mark.parametrize(
    ("zone", "first", "second", "periods"),
    [
        # 23:59 and 00:01 local on either side of midnight, the same UTC day for the first two
        (
            "Asia/Kolkata",
            "2026-02-14T18:29:00Z",
            "2026-02-14T18:31:00Z",
            ("2026-02-14", "2026-02-15"),
        ),
        # Los Angeles two days after DST began (UTC-7): midnight is 07:00Z
        (
            "America/Los_Angeles",
            "2026-03-10T06:59:00Z",
            "2026-03-10T07:01:00Z",
            ("2026-03-09", "2026-03-10"),
        ),
        # Auckland in summer time (UTC+13): midnight is 11:00Z the day before
        (
            "Pacific/Auckland",
            "2026-01-10T10:59:00Z",
            "2026-01-10T11:01:00Z",
            ("2026-01-10", "2026-01-11"),
        ),
        ("UTC", "2026-02-14T23:59:59Z", "2026-02-15T00:00:00Z", ("2026-02-14", "2026-02-15")),
    ],
)
def test_daily_periods_are_local_calendar_dates(
    zone: str, first: str, second: str, periods: tuple[str, str]
) -> None:
    p = Participant(catalog(timezone=zone))
    assert extended(p.tick(first)).period == periods[0]
    event = extended(p.tick(second))
    assert (event.period, event.count) == (periods[1], 2)


def test_the_same_instants_are_one_day_in_utc() -> None:
    p = Participant(catalog())  # no timezone: UTC
    p.tick("2026-02-14T18:29:00Z")
    assert p.tick("2026-02-14T18:31:00Z") == []


def test_a_25_hour_day_when_auckland_leaves_summer_time() -> None:
    # 2026-04-05 03:00 NZDT -> 02:00 NZST: the local day lasts 11:00Z Apr 4 to 12:00Z Apr 5.
    p = Participant(catalog(timezone="Pacific/Auckland"))
    assert extended(p.tick("2026-04-04T10:30:00Z")).period == "2026-04-04"
    late_on_the_long_day = extended(p.tick("2026-04-05T11:30:00Z"))  # 23:30 NZST
    assert (late_on_the_long_day.period, late_on_the_long_day.count) == ("2026-04-05", 2)
    assert p.tick("2026-04-05T11:59:59Z") == []
    assert extended(p.tick("2026-04-05T12:00:00Z")).period == "2026-04-06"


def test_a_23_hour_day_when_auckland_enters_summer_time() -> None:
    # 2026-09-27 02:00 NZST -> 03:00 NZDT: the local day lasts 12:00Z Sep 26 to 11:00Z Sep 27.
    p = Participant(catalog(timezone="Pacific/Auckland"))
    assert extended(p.tick("2026-09-26T12:00:00Z")).period == "2026-09-27"
    assert p.tick("2026-09-27T10:59:59Z") == []  # 23:59:59 NZDT, still Sep 27
    event = extended(p.tick("2026-09-27T11:00:00Z"))
    assert (event.period, event.count) == ("2026-09-28", 2)


# ---------------------------------------------------------------------------------------------
# Weekly periods: ISO weeks from Monday


def test_weekly_periods_are_iso_weeks_starting_monday() -> None:
    p = Participant(catalog(period="weekly"))
    assert extended(p.tick("2026-02-09T00:00:00Z")).period == "2026-W07"  # Monday
    assert p.tick("2026-02-15T23:59:59Z") == []  # Sunday, same week
    event = extended(p.tick("2026-02-16T00:00:00Z"))
    assert (event.period, event.count) == ("2026-W08", 2)


def test_weekly_periods_across_the_year_end() -> None:
    p = Participant(catalog(period="weekly"))
    assert extended(p.tick("2026-12-31T12:00:00Z")).period == "2026-W53"
    assert p.tick("2027-01-03T12:00:00Z") == []  # Sunday of 2026-W53
    event = extended(p.tick("2027-01-04T12:00:00Z"))
    assert (event.period, event.count) == ("2027-W01", 2)


def test_weekly_periods_in_a_time_zone() -> None:
    p = Participant(catalog(period="weekly", timezone="America/Los_Angeles"))
    # Monday 07:30Z is still Sunday 23:30 in Los Angeles (UTC-8): week 7
    assert extended(p.tick("2026-02-16T07:30:00Z")).period == "2026-W07"
    event = extended(p.tick("2026-02-16T08:00:00Z"))  # Monday 00:00 local
    assert (event.period, event.count) == ("2026-W08", 2)


# ---------------------------------------------------------------------------------------------
# Grace: late by at most grace_period_hours after the end of the first missed period


@pytest.mark.parametrize(
    ("tick", "continues"),
    [("2026-02-11T05:59:59Z", True), ("2026-02-11T06:00:00Z", False)],
)
def test_grace_just_inside_and_just_outside(tick: str, continues: bool) -> None:
    p = Participant(catalog(grace_period_hours=6))
    p.ticks("2026-02-08T12:00:00Z", "2026-02-09T12:00:00Z")  # Tuesday 10th is missed
    events = p.tick(tick)
    event = extended(events)
    if continues:
        assert (event.count, event.freezes_used, broken(events)) == (3, 0, [])
    else:
        assert broken(events) == [StreakBroken(code=CODE, previous_count=2)]
        assert (event.count, event.longest, event.new_record) == (1, 2, False)


def test_without_grace_a_missed_day_breaks_the_streak() -> None:
    p = Participant(catalog())
    p.tick("2026-02-09T23:00:00Z")
    events = p.tick("2026-02-11T00:00:00Z")
    assert broken(events) == [StreakBroken(code=CODE, previous_count=1)]
    assert extended(events).count == 1


@pytest.mark.parametrize(
    ("tick", "continues"),
    [("2026-03-09T08:59:59Z", True), ("2026-03-09T09:00:00Z", False)],
)
def test_grace_ends_at_local_midnight_plus_grace_across_dst(tick: str, continues: bool) -> None:
    # Sunday Mar 8 (DST starts: a 23 h day) is missed; it ends at Mon 00:00 PDT = 07:00Z,
    # so a 2 h grace closes at 09:00Z (a fixed UTC-8 offset would say 10:00Z).
    p = Participant(catalog(timezone="America/Los_Angeles", grace_period_hours=2))
    p.tick("2026-03-07T20:00:00Z")  # Saturday 12:00 PST
    assert bool(broken(p.tick(tick))) is not continues


def test_a_long_grace_can_cover_several_missed_periods() -> None:
    p = Participant(catalog(grace_period_hours=48))
    p.tick("2026-02-09T12:00:00Z")  # Monday; Tuesday and Wednesday are missed
    events = p.tick("2026-02-12T23:59:59Z")  # Tuesday ended Wed 00:00, +48 h = Fri 00:00
    assert (extended(events).count, broken(events)) == (2, [])


@pytest.mark.parametrize(
    ("tick", "continues"),
    [("2026-02-23T23:59:59Z", True), ("2026-02-24T00:00:00Z", False)],
)
def test_weekly_grace(tick: str, continues: bool) -> None:
    p = Participant(catalog(period="weekly", grace_period_hours=24))
    p.tick("2026-02-12T12:00:00Z")  # week 7; week 8 is missed, it ends Monday Feb 23 00:00
    events = p.tick(tick)
    assert extended(events).count == (2 if continues else 1)


# ---------------------------------------------------------------------------------------------
# Freezes: granted per calendar week or month, capped, used one per missed period


WEEKLY_FREEZE = {"per_period": "week", "max": 1, "stockpile_max": 3}


def test_the_first_tick_grants_the_current_allowance() -> None:
    p = Participant(catalog(freeze_allowance=WEEKLY_FREEZE))
    event = extended(p.tick("2026-02-11T12:00:00Z"))
    assert (event.freezes_available, event.freezes_granted_through) == (1, "2026-W07")
    assert p.streak["freezes_available"] == 1
    assert p.streak["freezes_granted_through"] == "2026-W07"


def test_freezes_accumulate_weekly_up_to_the_stockpile_cap() -> None:
    p = Participant(catalog(period="weekly", freeze_allowance=WEEKLY_FREEZE))
    got = [
        extended(p.tick(ts)).freezes_available
        for ts in (
            "2026-02-09T12:00:00Z",
            "2026-02-16T12:00:00Z",
            "2026-02-23T12:00:00Z",
            "2026-03-02T12:00:00Z",
        )
    ]
    assert got == [1, 2, 3, 3]


def test_the_stockpile_defaults_to_the_allowance() -> None:
    p = Participant(catalog(freeze_allowance={"per_period": "week", "max": 2}))
    assert extended(p.tick("2026-02-11T12:00:00Z")).freezes_available == 2
    event = extended(p.tick("2026-02-14T12:00:00Z"))  # 12th and 13th missed
    assert (event.count, event.freezes_used, event.freezes_available) == (2, 2, 0)
    event = extended(p.tick("2026-02-16T12:00:00Z"))  # 15th missed; week 8 granted 2
    assert (event.count, event.freezes_used, event.freezes_available) == (3, 1, 1)


def test_a_freeze_bridges_one_missed_day_and_is_used_up() -> None:
    p = Participant(catalog(freeze_allowance=WEEKLY_FREEZE))
    p.ticks("2026-02-09T12:00:00Z", "2026-02-10T12:00:00Z")  # Mon, Tue (week 7: 1 freeze)
    events = p.tick("2026-02-12T12:00:00Z")  # Wednesday missed
    event = extended(events)
    assert broken(events) == []
    assert (event.count, event.freezes_used, event.freezes_available) == (3, 1, 0)
    # Thursday -> Saturday: Friday missed, no freeze left this week
    events = p.tick("2026-02-14T12:00:00Z")
    assert broken(events) == [StreakBroken(code=CODE, previous_count=3)]
    assert (extended(events).count, extended(events).freezes_used) == (1, 0)


def test_freezes_cover_several_missed_weeks_one_each() -> None:
    p = Participant(catalog(period="weekly", freeze_allowance=WEEKLY_FREEZE))
    p.ticks(*(f"2026-02-{d:02d}T12:00:00Z" for d in (9, 16, 23)))  # 3 freezes stocked
    events = p.tick("2026-03-16T12:00:00Z")  # weeks 10 and 11 missed
    event = extended(events)
    assert (event.count, event.freezes_used, event.freezes_available) == (4, 2, 1)
    assert event.freezes_granted_through == "2026-W12"


def test_not_enough_freezes_breaks_and_keeps_the_freezes() -> None:
    p = Participant(catalog(freeze_allowance={"per_period": "month", "max": 1}))
    p.tick("2026-02-10T12:00:00Z")
    events = p.tick("2026-02-13T12:00:00Z")  # 11th and 12th missed, 1 freeze
    assert broken(events) == [StreakBroken(code=CODE, previous_count=1)]
    event = extended(events)
    assert (event.count, event.freezes_used, event.freezes_available) == (1, 0, 1)


def test_monthly_allowance_grants_at_each_local_month() -> None:
    allowance = {"per_period": "month", "max": 2, "stockpile_max": 2}
    p = Participant(catalog(timezone="Asia/Kolkata", freeze_allowance=allowance))
    p.ticks("2026-02-26T12:00:00Z", "2026-02-27T12:00:00Z")
    assert p.streak["freezes_granted_through"] == "2026-02"
    # Feb 28 and Mar 1 (IST) missed; 18:30Z on Mar 1 is Mar 2 00:00 IST: March is granted
    event = extended(p.tick("2026-03-01T18:30:00Z"))
    assert (event.period, event.count, event.freezes_used) == ("2026-03-02", 3, 2)
    assert (event.freezes_available, event.freezes_granted_through) == (0, "2026-03")


def test_grace_comes_before_freezes() -> None:
    p = Participant(catalog(grace_period_hours=12, freeze_allowance=WEEKLY_FREEZE))
    p.tick("2026-02-09T12:00:00Z")
    event = extended(p.tick("2026-02-11T11:00:00Z"))
    assert (event.count, event.freezes_used, event.freezes_available) == (2, 0, 1)


def test_no_allowance_means_no_freezes() -> None:
    p = Participant(catalog(freeze_allowance=None))
    event = extended(p.tick("2026-02-09T12:00:00Z"))
    assert (event.freezes_available, event.freezes_granted_through) == (0, None)


# ---------------------------------------------------------------------------------------------
# Breaking, restarting, records, late ticks


def test_restarting_keeps_the_longest_and_a_tie_is_no_record() -> None:
    p = Participant(catalog())
    p.ticks("2026-02-01T12:00:00Z", "2026-02-02T12:00:00Z", "2026-02-03T12:00:00Z")
    restart = p.tick("2026-02-10T12:00:00Z")
    assert broken(restart) == [StreakBroken(code=CODE, previous_count=3)]
    assert (extended(restart).count, extended(restart).longest) == (1, 3)
    tie = extended(p.ticks("2026-02-11T12:00:00Z", "2026-02-12T12:00:00Z"))
    assert (tie.count, tie.longest, tie.new_record) == (3, 3, False)
    record = extended(p.tick("2026-02-13T12:00:00Z"))
    assert (record.count, record.longest, record.new_record) == (4, 4, True)


def test_late_ticks_of_earlier_periods_count_nothing() -> None:
    p = Participant(catalog())
    p.ticks("2026-02-10T12:00:00Z", "2026-02-12T12:00:00Z")  # broken, restarted at 1 on the 12th
    assert p.tick("2026-02-11T12:00:00Z") == []  # would have bridged the gap: too late
    assert p.tick("2026-02-12T01:00:00Z") == []  # same period, earlier instant
    assert p.streak["count"] == 1
    assert p.streak["last_recorded_at"] == "2026-02-12T12:00:00Z"


# ---------------------------------------------------------------------------------------------
# Reads at an instant: is_at_risk, status, best


def state_after(cat: Catalog, *timestamps: str) -> dict[str, Any]:
    p = Participant(cat)
    p.ticks(*timestamps)
    return p.streak


@pytest.mark.parametrize(
    ("now", "at_risk", "current"),
    [
        ("2026-02-10T23:00:00Z", False, 1),  # ticked today
        ("2026-02-11T00:00:00Z", True, 1),  # a new day without a tick
        ("2026-02-11T23:59:59Z", True, 1),
        ("2026-02-12T05:59:59Z", True, 1),  # the 11th missed, within the 6 h grace
        ("2026-02-12T06:00:00Z", False, 0),  # broken
    ],
)
def test_at_risk_and_current_at_an_instant(now: str, at_risk: bool, current: int) -> None:
    definition = {"name": "D", "grace_period_hours": 6}
    stored = state_after(catalog(**definition), "2026-02-10T12:00:00Z")
    assert streaks.is_at_risk(stored, definition, instant(now)) is at_risk
    assert streaks.current_count(stored, definition, instant(now)) == current


def test_a_streak_bridged_by_freezes_is_still_running_and_at_risk() -> None:
    definition = {"name": "D", "freeze_allowance": {"per_period": "week", "max": 2}}
    stored = state_after(catalog(**definition), "2026-02-09T12:00:00Z")
    now = instant("2026-02-12T10:00:00Z")  # 10th and 11th missed, 2 freezes
    entry = streaks.status(CODE, stored, definition, now)
    assert entry == {
        "code": CODE,
        "name": "D",
        "current_count": 1,
        "longest_count": 1,
        "last_recorded_at": "2026-02-09T12:00:00Z",
        "is_at_risk": True,
        "period": "daily",
        "freezes_available": 0,  # both are spent on the gap
    }
    later = streaks.status(CODE, stored, definition, instant("2026-02-13T00:00:00Z"))
    assert (later["current_count"], later["is_at_risk"], later["freezes_available"]) == (
        0,
        False,
        2,
    )


def test_weekly_at_risk_in_a_time_zone() -> None:
    definition = {"period": "weekly", "timezone": "Pacific/Auckland"}
    stored = state_after(catalog(**definition), "2026-02-10T00:00:00Z")  # Tue 13:00 NZDT, W07
    assert not streaks.is_at_risk(stored, definition, instant("2026-02-15T10:59:59Z"))
    assert streaks.is_at_risk(stored, definition, instant("2026-02-15T11:00:00Z"))  # Mon NZDT


def test_status_of_a_streak_whose_definition_is_inactive() -> None:
    stored = state_after(catalog(period="weekly"), "2026-02-10T12:00:00Z")
    entry = streaks.status(CODE, stored, None, instant("2026-02-10T13:00:00Z"))
    assert entry["current_count"] == 0 and entry["longest_count"] == 1
    assert (entry["name"], entry["period"], entry["is_at_risk"]) == (CODE, "weekly", False)


def test_best_is_none_without_streaks() -> None:
    assert streaks.best({}, catalog(), instant("2026-02-10T12:00:00Z")) is None


def test_best_prefers_the_highest_running_count_then_longest_then_code() -> None:
    cat = Catalog(
        streaks={
            code: {"code": code, "id": code, "name": code, "period": "daily"}
            for code in ("a", "b", "c", "d")
        }
    )
    states = {
        # broken at now: current 0 although its stored count is 10
        "a": {"count": 10, "longest": 10, "last_recorded_at": "2026-02-01T12:00:00Z"},
        "b": {"count": 2, "longest": 2, "last_recorded_at": "2026-02-09T12:00:00Z"},
        "c": {"count": 2, "longest": 5, "last_recorded_at": "2026-02-10T08:00:00Z"},
        "d": {"count": 2, "longest": 5, "last_recorded_at": "2026-02-10T09:00:00Z"},
    }
    now = instant("2026-02-10T12:00:00Z")
    assert streaks.best(states, cat, now) == {
        "current": 2,
        "longest": 5,
        "last_activity_at": "2026-02-10T08:00:00Z",
    }
    only_broken = {"a": states["a"]}
    assert streaks.best(only_broken, cat, now) == {
        "current": 0,
        "longest": 10,
        "last_activity_at": "2026-02-01T12:00:00Z",
    }
    inactive = Catalog()
    assert streaks.best({"b": states["b"]}, inactive, now)["current"] == 0  # type: ignore[index]


def test_an_unknown_timezone_is_read_as_utc() -> None:
    assert streaks.Rules.of({"timezone": "Mars/Olympus"}).tz.key == "UTC"
    p = Participant(catalog(timezone="Mars/Olympus"))
    assert extended(p.tick("2026-02-14T23:30:00Z")).period == "2026-02-14"


def test_the_decision_is_pure_the_same_input_gives_the_same_events() -> None:
    cat = catalog(timezone="Asia/Kolkata", freeze_allowance=WEEKLY_FREEZE)
    assert Participant(cat).tick("2026-02-14T10:00:00Z") == Participant(cat).tick(
        "2026-02-14T10:00:00Z"
    )


def test_ticks_at_utc_offsets_are_normalized() -> None:
    p = Participant(catalog(timezone="UTC"))
    event = extended(p.tick("2026-02-14T23:30:00-05:00"))
    assert (event.period, event.recorded_at) == ("2026-02-15", "2026-02-15T04:30:00Z")
    assert datetime(2026, 2, 15, 4, 30, tzinfo=UTC) == instant(event.recorded_at)

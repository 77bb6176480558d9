"""Values chosen so that near-miss implementations differ (issue 16: mutants no test caught).

Each test names the near miss it rules out: several tiers above the participant, versions past
256 (identity is not equality there), history keys at versions other than 1, a non-default commit
source, freezes granted for several periods below the cap, monthly against weekly allowances,
a challenge window that changes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from itertools import count
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

import services.participants.features  # noqa: F401 - registers the deciders
from projections import leaderboards as lb_reads
from projections.participants.features import leaderboards as lb_periods
from projections.participants.projector import (
    APPLIED,
    CONFLICT,
    ParticipantRow,
    apply_commit,
)
from schemas import codec as codec_module
from schemas.codec import CodecError, decode, encode
from schemas.events import (
    BadgeEarned,
    Causation,
    ChallengeCompleted,
    ChallengeProgressed,
    Commit,
    ParticipantProfileUpdated,
    PointsAwarded,
    PointsDeducted,
    TierChanged,
    attributes_after,
)
from schemas.sections import fold
from services.participants.commands import (
    AwardBadge,
    AwardPoints,
    RegisterParticipant,
    UpdateParticipant,
)
from services.participants.domain import (
    MAX_ATTRIBUTE_BYTES,
    MAX_ATTRIBUTE_KEYS,
    AttributesTooLarge,
    Env,
    ParticipantState,
    check_attribute_bounds,
    decide,
    json_size,
)
from services.participants.engine import Catalog, Draft
from services.participants.features import badges, challenges, streaks, tiers
from services.participants.features import events as events_feature
from services.participants.features import rewards as reward_rules

NOW = datetime(2026, 2, 14, 10, 0, tzinfo=UTC)
AT = "2026-02-14T10:00:00Z"


def env(catalog: Catalog = Catalog()) -> Env:  # noqa: B008 - a frozen, empty catalog
    ids = count(1)
    return Env(new_id=lambda: f"id{next(ids)}", now=NOW, catalog=catalog)


def tier(code: str, level: int, points: int, **extra: Any) -> tuple[str, str, str, dict[str, Any]]:
    body = {"name": code.title(), "level": level, "criteria_config": {"min_points": points}}
    return ("tier", f"id-{code}", code, {**body, **extra})


# Four automatic tiers (and a manual one between them): a participant at bronze has three above.
LADDER = Catalog.of(
    [
        tier("platinum", 4, 1000),
        tier("bronze", 1, 0),
        tier("vip", 2, 0, award_type="manual"),
        tier("gold", 3, 500),
        tier("silver", 2, 100),
    ]
)


# ---------------------------------------------------------------------------------------------
# Tiers


@pytest.mark.parametrize(
    ("level", "expected"),
    [(None, "bronze"), (0, "bronze"), (1, "silver"), (2, "gold"), (3, "platinum"), (4, None)],
)
def test_next_tier_is_the_next_automatic_one_not_the_highest(
    level: int | None, expected: str | None
) -> None:
    upcoming = tiers.next_tier(LADDER, level, -1)  # below every threshold: none is pending
    assert (upcoming["code"] if upcoming else None) == expected


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        (0, "bronze"),
        (99, "bronze"),
        (100, "silver"),
        (499, "silver"),
        (500, "gold"),
        (10**6, "platinum"),
    ],
)
def test_the_qualifying_tier_is_the_highest_threshold_reached(points: int, expected: str) -> None:
    reached = tiers.qualifying(LADDER, points)
    assert reached is not None and reached["code"] == expected


def test_min_points_defaults_to_zero_and_reads_the_criteria() -> None:
    assert tiers.min_points({"code": "x"}) == 0
    assert tiers.min_points({"criteria_config": None}) == 0
    assert tiers.min_points({"criteria_config": {"min_points": "250"}}) == 250


def test_an_automatic_upgrade_is_not_manual_and_names_what_it_replaced() -> None:
    state = ParticipantState(
        version=4,
        balance=120,
        total_earned=120,
        sections={"tier": {"code": "silver", "name": "Silver", "level": 2, "color": "#ccc"}},
    )
    events = decide(state, AwardPoints("u1", 400), env(LADDER))
    assert events[1:] == [
        TierChanged(
            code="gold",
            name="Gold",
            level=3,
            color=None,
            previous_code="silver",
            previous_level=2,
            manual=False,
        )
    ]


def test_an_upgrade_keeps_the_tier_s_color_and_falls_back_to_the_code_for_a_name() -> None:
    catalog = Catalog.of([("tier", "id-t", "t1", {"level": 1, "color": "#f00"})])
    [_, _, changed] = decide(None, AwardPoints("u1", 5), env(catalog))
    assert (changed.code, changed.name, changed.color, changed.level) == ("t1", "t1", "#f00", 1)


# ---------------------------------------------------------------------------------------------
# Projector: the version check and history keys


def commit(version: int, *events: Any, source: str = "http") -> Commit:
    return Commit("c", "t", "u1", version, AT, Causation("points.award", source), events)


@pytest.mark.parametrize("version", [255, 256, 257, 300, 100_000])
def test_the_version_check_compares_values_past_the_small_int_cache(version: int) -> None:
    # Both numbers are made at run time: equal values, distinct objects above 256.
    row = ParticipantRow("t", "u1", version=int(str(version)), balance=10, total_earned=10)
    verdict = apply_commit(
        row, commit(int(str(version)), PointsAwarded("tx", 5, 15)), key_used=False
    )
    assert verdict.status == APPLIED
    assert verdict.row is not None and verdict.row.version == version + 1
    stale = apply_commit(row, commit(version - 1, PointsAwarded("tx", 5, 15)), key_used=False)
    assert stale.status == CONFLICT and stale.row is row


@pytest.mark.parametrize("version", [0, 2, 5, 300])
def test_history_rows_are_keyed_by_the_version_the_commit_makes_and_the_event_index(
    version: int,
) -> None:
    row = ParticipantRow("t", "u1", version=version, balance=100, total_earned=100)
    events = (PointsAwarded("tx1", 5, 105, "a", {"k": 1}), PointsDeducted("tx2", 7, 98, "b"))
    verdict = apply_commit(row if version else None, commit(version, *events), key_used=False)
    assert verdict.status == APPLIED
    award, deduct = [w for w in verdict.writes if w.statement == "ledger_insert"]
    assert award.params == ("t", "u1", version + 1, 0, "tx1", "award", 5, 105, "a", '{"k":1}', AT)
    assert deduct.params == ("t", "u1", version + 1, 1, "tx2", "deduct", -7, 98, "b", "{}", AT)


# ---------------------------------------------------------------------------------------------
# Codec


@pytest.mark.parametrize("source", ["inbound", "admin", "replay"])
def test_a_commit_s_non_default_source_survives_the_round_trip(source: str) -> None:
    original = commit(7, PointsAwarded("tx", 1, 1), source=source)
    assert decode(encode(original)).causation.source == source


def test_a_commit_without_a_source_reads_as_http() -> None:
    raw = orjson.loads(encode(commit(0, PointsAwarded("tx", 1, 1))))
    del raw["causation"]["source"]
    assert decode(orjson.dumps(raw)).causation.source == "http"


@pytest.mark.parametrize("bad", ["3", 3.0, True, None, [3]])
def test_expected_version_must_be_an_integer(bad: Any) -> None:
    raw = orjson.loads(encode(commit(3, PointsAwarded("tx", 1, 1))))
    raw["expected_version"] = bad
    with pytest.raises(CodecError, match="expected an integer"):
        decode(orjson.dumps(raw))


@pytest.mark.parametrize("field", ["commit_id", "tenant", "participant_id", "recorded_at"])
def test_string_fields_must_be_strings(field: str) -> None:
    raw = orjson.loads(encode(commit(3, PointsAwarded("tx", 1, 1))))
    raw[field] = 5
    with pytest.raises(CodecError, match="expected a string"):
        decode(orjson.dumps(raw))


# ---------------------------------------------------------------------------------------------
# Streak freezes: months are not weeks; several periods are granted at once below the cap


def rules(per: str, most: int, cap: int | None = None) -> streaks.Rules:
    allowance: dict[str, Any] = {"per_period": per, "max": most}
    if cap is not None:
        allowance["stockpile_max"] = cap
    return streaks.Rules.of({"period": "daily", "freeze_allowance": allowance})


def at(raw: str) -> datetime:
    return datetime.fromisoformat(raw.replace("Z", "+00:00"))


def test_a_monthly_allowance_grants_nothing_new_within_the_month_across_weeks() -> None:
    stored = {"freezes_available": 0, "freezes_granted_through": "2026-02"}
    # Feb 2 (week 6) to Feb 27 (week 9): three new weeks, no new month.
    assert streaks.granted(stored, rules("month", 1, 5), at("2026-02-27T12:00:00Z")) == (
        0,
        "2026-02",
    )


def test_a_monthly_allowance_grants_once_per_month_begun() -> None:
    stored = {"freezes_available": 0, "freezes_granted_through": "2026-02"}
    assert streaks.granted(stored, rules("month", 1, 5), at("2026-04-03T12:00:00Z")) == (
        2,
        "2026-04",
    )
    # across the year end: December -> February is two months
    stored = {"freezes_available": 1, "freezes_granted_through": "2025-12"}
    assert streaks.granted(stored, rules("month", 1, 5), at("2026-02-01T00:00:00Z")) == (
        3,
        "2026-02",
    )


def test_several_weeks_are_granted_at_once_below_the_cap() -> None:
    stored = {"freezes_available": 1, "freezes_granted_through": "2026-W07"}
    # weeks 8, 9 and 10 begun: 1 + 2 * 3 = 7, under the cap of 10
    assert streaks.granted(stored, rules("week", 2, 10), at("2026-03-04T12:00:00Z")) == (
        7,
        "2026-W10",
    )
    # the same gap with a cap of 4 stops at the cap
    assert streaks.granted(stored, rules("week", 2, 4), at("2026-03-04T12:00:00Z")) == (
        4,
        "2026-W10",
    )


def test_a_stock_above_a_lowered_cap_is_kept_not_cut() -> None:
    stored = {"freezes_available": 6, "freezes_granted_through": "2026-W07"}
    assert streaks.granted(stored, rules("week", 1, 3), at("2026-03-04T12:00:00Z")) == (
        6,
        "2026-W10",
    )


def test_the_first_grant_is_one_period_s_allowance() -> None:
    assert streaks.granted({}, rules("week", 2, 10), at("2026-03-04T12:00:00Z")) == (2, "2026-W10")
    assert streaks.granted({}, rules("month", 2, 10), at("2026-03-04T12:00:00Z")) == (2, "2026-03")


def test_an_unreadable_grant_key_counts_as_one_period() -> None:
    stored = {"freezes_available": 1, "freezes_granted_through": "garbage"}
    assert streaks.granted(stored, rules("week", 2, 10), at("2026-03-04T12:00:00Z")) == (
        3,
        "2026-W10",
    )


@pytest.mark.parametrize(
    ("allowance", "expected"),
    [
        ({"per_period": "month", "max": 2, "stockpile_max": 5}, ("month", 2, 5)),
        ({"per_period": "week", "max": 3}, ("week", 3, 3)),
        ({"max": 1}, ("week", 1, 1)),
        ({"per_period": "month", "max": 0}, (None, 0, 0)),
        ({"per_period": "month", "max": 2, "stockpile_max": 0}, ("month", 2, 0)),
    ],
)
def test_the_allowance_as_the_rules_read_it(
    allowance: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    got = streaks.Rules.of({"freeze_allowance": allowance})
    assert (got.freeze_per, got.freeze_max, got.freeze_cap) == expected


# ---------------------------------------------------------------------------------------------
# Re-registration with attributes: null


@pytest.mark.parametrize("attributes", [{"a": 1}, {"a": 1, "b": [1, 2]}])
def test_registering_again_with_null_attributes_clears_a_small_map(
    attributes: dict[str, Any],
) -> None:
    state = ParticipantState(version=1, attributes=attributes)
    [event] = decide(state, RegisterParticipant("u1", attributes=None), env())
    assert isinstance(event, ParticipantProfileUpdated)
    assert attributes_after(event, attributes) == {}
    assert event.changes == {}


def test_registering_again_with_a_map_folds_to_exactly_that_map() -> None:
    state = ParticipantState(version=1, attributes={"a": 1, "b": 2, "c": 3, "d": 4})
    for wanted in ({"a": 1}, {"z": 0}, {"a": 2, "b": 2, "c": 3, "d": 4, "e": None}):
        [event] = decide(state, RegisterParticipant("u1", attributes=wanted), env())
        assert attributes_after(event, state.attributes) == wanted


# ---------------------------------------------------------------------------------------------
# Challenge sections across windows


def test_a_new_window_starts_without_the_old_completion() -> None:
    sections = fold(ChallengeProgressed("c1", "2026-W06", {"o": 3}), {}, "2026-02-03T00:00:00Z")
    sections = fold(ChallengeCompleted("c1", "2026-W06"), sections, "2026-02-04T00:00:00Z")
    assert sections["challenges"]["c1"]["completed_at"] == "2026-02-04T00:00:00Z"
    same = fold(ChallengeProgressed("c1", "2026-W06", {"o": 4}), sections, "2026-02-05T00:00:00Z")
    assert same["challenges"]["c1"] == {
        "window": "2026-W06",
        "progress": {"o": 4},
        "completed_at": "2026-02-04T00:00:00Z",
    }
    later = fold(ChallengeProgressed("c1", "2026-W07", {"o": 1}), sections, "2026-02-10T00:00:00Z")
    assert later["challenges"]["c1"] == {
        "window": "2026-W07",
        "progress": {"o": 1},
        "completed_at": None,
    }
    assert sections["challenges"]["c1"]["window"] == "2026-W06"  # the input is untouched


def test_a_completion_without_progress_records_its_window() -> None:
    sections = fold(ChallengeCompleted("c2", "w9"), {"challenges": {}}, AT)
    assert sections["challenges"]["c2"] == {"window": "w9", "progress": {}, "completed_at": AT}


# ---------------------------------------------------------------------------------------------
# Earn-rule conditions at their boundaries


@pytest.mark.parametrize(
    ("conditions", "properties", "expected"),
    [
        ({"n": {"eq": 2}}, {"n": 2}, True),
        ({"n": {"eq": 2}}, {"n": 3}, False),
        ({"n": {"eq": None}}, {}, False),  # absent is not null
        ({"n": {"ne": 2}}, {"n": 3}, True),
        ({"n": {"ne": 2}}, {"n": 2}, False),
        ({"n": {"ne": 2}}, {}, False),
        ({"n": {"gt": 2}}, {"n": 2}, False),
        ({"n": {"gt": 2}}, {"n": 2.5}, True),
        ({"n": {"gte": 2}}, {"n": 2}, True),
        ({"n": {"gte": 2}}, {"n": 1.9}, False),
        ({"n": {"lt": 2}}, {"n": 2}, False),
        ({"n": {"lt": 2}}, {"n": 1}, True),
        ({"n": {"lte": 2}}, {"n": 2}, True),
        ({"n": {"lte": 2}}, {"n": 3}, False),
        ({"n": {"gt": 0}}, {"n": True}, False),  # a boolean is not a number
        ({"n": {"gt": "1"}}, {"n": 2}, False),
        ({"n": {"between": 1}}, {"n": 2}, False),  # an unknown operator never holds
        ({"n": {"in": [1, 2]}}, {"n": 3}, False),
        ({"n": {"exists": True}}, {"n": None}, True),
        ({"n": {"exists": False}}, {"n": 0}, False),
        ({"a": 1, "b": {"gte": 1}}, {"a": 1, "b": 0}, False),
        ({"a": 1, "b": {"gte": 1}}, {"a": 1, "b": 1}, True),
        ({"a": 1}, {"a": 2}, False),
        (None, {}, True),
    ],
)
def test_conditions_at_their_boundaries(
    conditions: dict[str, Any] | None, properties: dict[str, Any], expected: bool
) -> None:
    assert events_feature.matches(conditions, properties) is expected


# ---------------------------------------------------------------------------------------------
# Instants are written in UTC whatever the process's local zone


@pytest.fixture
def local_zone_kolkata(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local zone set to UTC+05:30 (the machine's own is often UTC)."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("local_zone_kolkata")
def test_instants_are_written_in_utc_whatever_the_local_zone() -> None:
    moment = datetime(2026, 2, 14, 23, 30, tzinfo=timezone(timedelta(hours=-2)))
    assert challenges.iso(moment) == "2026-02-15T01:30:00Z"
    assert streaks.iso(moment) == "2026-02-15T01:30:00Z"
    assert Env(new_id=lambda: "x", now=moment).at == "2026-02-15T01:30:00Z"
    assert challenges.moment("2026-02-14T23:30:00-02:00") == datetime(
        2026, 2, 15, 1, 30, tzinfo=UTC
    )
    assert challenges.moment("2026-02-14T23:30:00") == datetime(2026, 2, 14, 23, 30, tzinfo=UTC)
    assert challenges.moment("2026-02-14T23:30:00").utcoffset() == timedelta(0)
    assert [challenges.moment(v) for v in ("", None, 5, "yesterday")] == [None] * 4


def test_a_row_s_sections_are_read_with_a_default_and_replaced_one_at_a_time() -> None:
    row = ParticipantRow("t", "u1", sections={"tier": {"code": "gold"}})
    assert row.section("tier") == {"code": "gold"}
    assert row.section("badges") is None and row.section("badges", {}) == {}
    changed = row.with_section("badges", {"b": 1})
    assert changed.sections == {"tier": {"code": "gold"}, "badges": {"b": 1}}
    assert row.sections == {"tier": {"code": "gold"}}  # the row itself is unchanged


# ---------------------------------------------------------------------------------------------
# Badges: what an earned badge records, criteria defaults


def badge_def(code: str, **body: Any) -> tuple[str, str, str, dict[str, Any]]:
    return ("badge", f"id-{code}", code, {"name": code.title(), **body})


def test_badges_earned_by_criteria_and_by_award_record_name_rarity_and_how() -> None:
    catalog = Catalog.of(
        [
            badge_def("first", rarity="rare", criteria_config={"min_points": 1}),
            badge_def("gift", rarity="epic", award_type="manual"),
        ]
    )
    events = decide(None, AwardPoints("u1", 1), env(catalog))
    assert events[-1] == BadgeEarned(code="first", name="First", rarity="rare", manual=False)
    state = ParticipantState(version=1, sections=fold(events[-1], {}, AT))
    assert decide(state, AwardBadge("u1", "gift"), env(catalog)) == [
        BadgeEarned(code="gift", name="Gift", rarity="epic", manual=True)
    ]


@pytest.mark.parametrize(
    ("criteria", "sections", "points", "met"),
    [
        ({}, {}, 10**6, False),
        ({"min_points": 10}, {}, 9, False),
        ({"min_points": 10}, {}, 10, True),
        ({"event_name": "login"}, {}, 0, False),
        ({"event_name": "login"}, {"event_counts": {"login": 1}}, 0, True),
        ({"event_name": "login", "event_count": 2}, {"event_counts": {"login": 1}}, 0, False),
        ({"event_name": "login", "event_count": 2}, {"event_counts": {"login": 2}}, 0, True),
        ({"streak_code": "s"}, {}, 0, False),
        ({"streak_code": "s"}, {"streaks": {"s": {"longest": 1}}}, 0, True),
        ({"streak_code": "s"}, {"streaks": {"s": {"count": 5}}}, 0, False),
        ({"streak_code": "s", "streak_length": 3}, {"streaks": {"s": {"longest": 2}}}, 0, False),
        ({"streak_code": "s", "streak_length": 3}, {"streaks": {"s": {"longest": 3}}}, 0, True),
        (
            {"min_points": 5, "event_name": "login", "streak_code": "s"},
            {"event_counts": {"login": 1}, "streaks": {"s": {"longest": 1}}},
            5,
            True,
        ),
        (
            {"min_points": 5, "event_name": "login", "streak_code": "s"},
            {"event_counts": {"login": 1}, "streaks": {"s": {"longest": 0}}},
            5,
            False,
        ),
    ],
)
def test_badge_criteria_and_their_defaults(
    criteria: dict[str, Any], sections: dict[str, Any], points: int, met: bool
) -> None:
    assert badges.criteria_met({"criteria_config": criteria}, sections, points) is met


# ---------------------------------------------------------------------------------------------
# Leaderboard periods


def test_a_leaderboard_ranks_points_unless_it_names_events() -> None:
    assert lb_reads.metric_of({}) == "points"
    assert lb_reads.metric_of({"metric": "points", "event_name": "x"}) == "points"
    assert lb_reads.metric_of({"metric": "events"}) == "events"
    assert lb_reads.metric_of({"metric": "events", "event_name": "login"}) == "event:login"


@pytest.mark.usefixtures("local_zone_kolkata")
def test_previous_periods_are_read_in_utc_whatever_the_local_zone() -> None:
    # 20:00Z on the 14th is already the 15th in Kolkata: UTC decides
    moment = datetime(2026, 2, 14, 20, 0, tzinfo=UTC)
    assert lb_periods.period_key("daily", moment) == "2026-02-14"
    assert lb_periods.previous_period_key("daily", moment) == "2026-02-13"
    late = datetime(2026, 3, 1, 1, 0, tzinfo=timezone(timedelta(hours=5)))  # Feb 28, 20:00Z
    assert lb_periods.previous_period_key("monthly", late) == "2026-01"
    assert lb_periods.previous_period_key("daily", datetime(2026, 3, 1, 1, 0)) == "2026-02-28"


def test_an_unknown_period_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown period 'hourly'"):
        lb_periods.previous_period_key("hourly", NOW)
    with pytest.raises(ValueError, match="unknown period 'hourly'"):
        lb_periods.period_key("hourly", NOW)


@pytest.mark.parametrize(
    ("rank", "total", "expected"), [(1, 4, 100.0), (4, 4, 25.0), (2, 3, 66.7), (1, 0, 0.0)]
)
def test_percentile(rank: int, total: int, expected: float) -> None:
    assert lb_reads.percentile(rank, total) == expected


# ---------------------------------------------------------------------------------------------
# Streak reads


def test_the_status_of_a_streak_whose_definition_is_gone_is_every_stored_field() -> None:
    stored = {
        "count": 4,
        "longest": 6,
        "period": "2026-W07",
        "last_recorded_at": "2026-02-10T12:00:00Z",
        "freezes_available": 2,
    }
    assert streaks.status("s1", stored, None, at("2026-02-10T13:00:00Z")) == {
        "code": "s1",
        "name": "s1",
        "current_count": 0,
        "longest_count": 6,
        "last_recorded_at": "2026-02-10T12:00:00Z",
        "is_at_risk": False,
        "period": "weekly",
        "freezes_available": 2,
    }
    assert streaks.status("s2", {}, None, at("2026-02-10T13:00:00Z")) == {
        "code": "s2",
        "name": "s2",
        "current_count": 0,
        "longest_count": 0,
        "last_recorded_at": None,
        "is_at_risk": False,
        "period": "daily",
        "freezes_available": 0,
    }


def test_a_definition_without_a_name_shows_the_code() -> None:
    entry = streaks.status("s3", {}, {"period": "daily"}, at("2026-02-10T13:00:00Z"))
    assert (entry["name"], entry["longest_count"], entry["current_count"]) == ("s3", 0, 0)


# ---------------------------------------------------------------------------------------------
# Rewards: expiry


@pytest.mark.parametrize(
    ("expires_at", "expired"),
    [
        (None, False),
        ("", False),
        ("not a date", False),
        ("2026-02-14T10:00:00Z", True),  # at the instant itself
        ("2026-02-14T10:00:01Z", False),
        ("2026-02-14T09:59:59", True),  # naive: UTC
        ("2026-02-14T11:00:00+02:00", True),  # 09:00Z
    ],
)
def test_a_reward_expires_at_its_instant(expires_at: str | None, expired: bool) -> None:
    assert reward_rules.expired({"expires_at": expires_at}, NOW) is expired


# ---------------------------------------------------------------------------------------------
# The draft a decision works on, the catalog


def test_a_draft_of_a_new_participant_starts_empty() -> None:
    draft = Draft(None, catalog=Catalog(), now=NOW, new_id=lambda: "x", at=AT)
    assert (draft.exists, draft.version, draft.balance, draft.total_earned) == (False, 0, 0, 0)
    assert (draft.total_spent, draft.sections, draft.events) == (0, {}, [])


def test_a_draft_keeps_its_counters_and_sections_as_events_are_added() -> None:
    state = ParticipantState(
        version=3, balance=100, total_earned=150, total_spent=50, sections={"x": 1}
    )
    draft = Draft(state, catalog=Catalog(), now=NOW, new_id=lambda: "tx9", at=AT)
    assert (draft.exists, draft.version, draft.balance) == (True, 3, 100)
    assert (draft.total_earned, draft.total_spent) == (150, 50)
    draft.add(PointsDeducted("tx1", 30, 70))
    assert (draft.balance, draft.total_earned, draft.total_spent) == (70, 150, 80)
    awarded = draft.award(10, "why", {"m": 1})
    assert awarded == PointsAwarded("tx9", 10, 80, "why", {"m": 1}, base_amount=10)
    assert (draft.balance, draft.total_earned, draft.total_spent) == (80, 160, 80)
    draft.add(TierChanged(code="gold", name="Gold", level=3))
    assert draft.sections["tier"]["achieved_at"] == AT
    assert draft.sections["x"] == 1 and state.sections == {"x": 1}


def test_the_catalog_keys_leaderboards_by_code_and_orders_tiers_by_level_then_code() -> None:
    catalog = Catalog.of(
        [
            ("leaderboard", "id-l", "weekly", {"name": "W"}),
            tier("b", 2, 0),
            tier("a", 2, 0),
            tier("z", 1, 0),
        ]
    )
    assert catalog.leaderboards == {"weekly": {"name": "W", "id": "id-l", "code": "weekly"}}
    assert [t["code"] for t in catalog.tiers] == ["z", "a", "b"]


# ---------------------------------------------------------------------------------------------
# The projector's edges


def test_a_keyed_commit_without_events_applies_and_changes_nothing() -> None:
    row = ParticipantRow("t", "u1", version=2, balance=5)
    verdict = apply_commit(row, commit(2), key_used=False)
    assert (verdict.status, verdict.row, verdict.writes) == (APPLIED, row, ())
    assert apply_commit(None, commit(0), key_used=False).row is None


def test_a_row_created_without_a_registration_dates_from_its_first_commit() -> None:
    verdict = apply_commit(None, commit(0, PointsAwarded("tx", 5, 5)), key_used=False)
    assert verdict.row is not None
    assert (verdict.row.created_at, verdict.row.last_seen_at, verdict.row.balance) == (AT, AT, 5)


def test_leaderboard_adds_of_one_batch_merge_per_score_row() -> None:
    params = [
        ("t", "points", "daily", "2026-02-14", "u1", 5, "2026-02-14T10:00:00Z"),
        ("t", "points", "daily", "2026-02-14", "u2", 1, "2026-02-14T10:00:01Z"),
        ("t", "points", "daily", "2026-02-14", "u1", 7, "2026-02-14T10:00:02Z"),
        ("t", "points", "weekly", "2026-W07", "u1", 2, "2026-02-14T10:00:03Z"),
    ]
    assert lb_periods._merge_adds(params) == [
        ("t", "points", "daily", "2026-02-14", "u1", 12, "2026-02-14T10:00:02Z"),
        ("t", "points", "daily", "2026-02-14", "u2", 1, "2026-02-14T10:00:01Z"),
        ("t", "points", "weekly", "2026-W07", "u1", 2, "2026-02-14T10:00:03Z"),
    ]


def test_leaderboard_instants_are_read_as_utc() -> None:
    assert lb_periods.parse_instant("2026-02-14T23:30:00-02:00") == datetime(
        2026, 2, 15, 1, 30, tzinfo=UTC
    )
    naive = lb_periods.parse_instant("2026-02-14T23:30:00")
    assert naive == datetime(2026, 2, 14, 23, 30, tzinfo=UTC)
    assert naive is not None and naive.utcoffset() == timedelta(0)
    assert lb_periods.parse_instant("soon") is None


@pytest.mark.usefixtures("local_zone_kolkata")
def test_leaderboard_instants_are_utc_whatever_the_local_zone() -> None:
    moment = lb_periods.parse_instant("2026-02-14T20:00:00+00:00")
    assert moment is not None and moment.utcoffset() == timedelta(0)
    assert lb_periods.period_key("daily", datetime(2026, 2, 14, 20, 0, tzinfo=UTC)) == "2026-02-14"


# ---------------------------------------------------------------------------------------------
# Codec and decision errors name what is wrong


def test_codec_errors_name_the_event_type_the_version_and_the_wrong_type() -> None:
    raw = orjson.loads(encode(commit(3, PointsAwarded("tx", 1, 1))))
    raw["events"][0]["type"] = "Nope"
    with pytest.raises(CodecError, match="unknown event type 'Nope'"):
        decode(orjson.dumps(raw))
    raw["events"][0] = {"type": "PointsAwarded", "version": 0, "data": {}}
    with pytest.raises(CodecError, match="no upcaster for PointsAwarded v0"):
        decode(orjson.dumps(raw))
    raw = orjson.loads(encode(commit(3, PointsAwarded("tx", 1, 1))))
    raw["tenant"], raw["expected_version"] = 7, "3"
    with pytest.raises(CodecError, match="expected a string, got int"):
        decode(orjson.dumps(raw))
    raw["tenant"] = "t"
    with pytest.raises(CodecError, match="expected an integer, got str"):
        decode(orjson.dumps(raw))


def test_an_unknown_command_is_named() -> None:
    with pytest.raises(TypeError, match="unknown command 'launch'"):
        decide(None, "launch", env())


def test_an_update_of_names_only_or_of_the_avatar_only_changes_them() -> None:
    state = ParticipantState(version=1, display_name="A", attributes={"k": 1})
    assert decide(state, UpdateParticipant("u1", display_name="B"), env()) == [
        ParticipantProfileUpdated(changes={"display_name": "B"})
    ]
    assert decide(state, UpdateParticipant("u1", avatar_url="https://x/a.png"), env()) == [
        ParticipantProfileUpdated(changes={"avatar_url": "https://x/a.png"})
    ]


def test_the_byte_bound_allows_exactly_the_bound_and_a_map_that_does_not_grow() -> None:
    fill = "x" * (MAX_ATTRIBUTE_BYTES - len('{"a":""}'))
    exactly = {"a": fill}
    assert json_size(exactly) == MAX_ATTRIBUTE_BYTES
    check_attribute_bounds({}, exactly)  # at the bound: allowed
    over = {"a": fill + "y"}
    with pytest.raises(AttributesTooLarge, match=f"1 keys, {MAX_ATTRIBUTE_BYTES + 1} bytes"):
        check_attribute_bounds({}, over)
    check_attribute_bounds(over, {"a": fill + "z"})  # over, but no larger than before
    too_many = {f"k{i}": i for i in range(MAX_ATTRIBUTE_KEYS + 1)}
    with pytest.raises(AttributesTooLarge, match=f"1001 keys, {json_size(too_many)} bytes"):
        check_attribute_bounds({}, too_many)


@pytest.mark.usefixtures("local_zone_kolkata")
def test_parsed_instants_are_utc_whatever_the_local_zone() -> None:
    moment = challenges.moment("2026-02-14T23:30:00-02:00")
    assert moment is not None and moment.utcoffset() == timedelta(0)
    naive = streaks.parse_instant("2026-02-14T10:00:00")
    assert naive.utcoffset() == timedelta(0) and naive.hour == 10


def test_rule_points_default_multiplier_and_cap() -> None:
    assert events_feature.rule_points({"points_property": "v"}, {"v": 3}) == 3
    assert events_feature.rule_points({"points_property": "v"}, {"v": 2_000_000}) == 1_000_000
    assert events_feature.rule_points({"points": 7, "points_property": "v"}, {"v": 3}) == 7


def test_removing_an_attribute_that_is_not_there_is_a_no_op() -> None:
    event = ParticipantProfileUpdated(attributes_removed=["gone"], attributes_set={"a": 1})
    assert attributes_after(event, {"b": 2}) == {"b": 2, "a": 1}


# ---------------------------------------------------------------------------------------------
# Each upcaster writes a complete record of the next version (its published JSON Schema)


def event_schema(name: str) -> Draft202012Validator:
    path = Path(codec_module.__file__).parent / "json" / "events" / f"{name}.json"
    return Draft202012Validator(json.loads(path.read_text()))


@pytest.mark.parametrize(
    ("upcast", "data", "schema"),
    [
        (ParticipantProfileUpdated.upcast_v1_v2, {}, "ParticipantProfileUpdated.v2"),
        (
            ParticipantProfileUpdated.upcast_v1_v2,
            {"fields": {"display_name": "J"}},
            "ParticipantProfileUpdated.v2",
        ),
        (
            ParticipantProfileUpdated.upcast_v2_v3,
            {"changes": {"attributes": {"a": 1}}},
            "ParticipantProfileUpdated.v3",
        ),
        (ParticipantProfileUpdated.upcast_v2_v3, {"changes": {}}, "ParticipantProfileUpdated.v3"),
        (
            PointsAwarded.upcast_v1_v2,
            {"transaction_id": "tx", "amount": 5, "balance_after": 5, "reason": None},
            "PointsAwarded.v2",
        ),
    ],
)
def test_an_upcast_record_is_complete_in_the_next_version(
    upcast: Any, data: dict[str, Any], schema: str
) -> None:
    upcast(data)
    errors = [e.message for e in event_schema(schema).iter_errors(data)]
    assert errors == [], data

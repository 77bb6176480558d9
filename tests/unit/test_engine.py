"""Engine rules: tier upgrades by level, automatic and manual badges, earn rules, the catalog."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count
from typing import Any

import pytest

import services.participants.features  # noqa: F401 - registers the deciders
from schemas.events import BadgeEarned, EventTracked, PointsAwarded, TierChanged
from schemas.sections import fold
from services.participants.commands import AssignTier, AwardBadge, AwardPoints, TrackEvent
from services.participants.domain import (
    Env,
    ParticipantState,
    UnknownDefinition,
    decide,
)
from services.participants.engine import Catalog
from services.participants.features.events import matches, rule_points

NOW = datetime(2026, 2, 14, 10, 0, tzinfo=UTC)


def tier(code: str, level: int, points: int, **extra: Any) -> tuple[str, str, str, dict[str, Any]]:
    body = {"name": code.title(), "level": level, "criteria_config": {"min_points": points}}
    return ("tier", f"id-{code}", code, {**body, **extra})


def badge(code: str, **criteria: Any) -> tuple[str, str, str, dict[str, Any]]:
    body: dict[str, Any] = {"name": code.title(), "rarity": "common"}
    if criteria:
        body["criteria_config"] = criteria
    return ("badge", f"id-{code}", code, body)


def rule(code: str, event: str, **body: Any) -> tuple[str, str, str, dict[str, Any]]:
    return ("rule", f"id-{code}", code, {"name": code, "event_name": event, **body})


def env(*definitions: tuple[str, str, str, dict[str, Any]]) -> Env:
    ids = count(1)
    return Env(new_id=lambda: f"id{next(ids)}", now=NOW, catalog=Catalog.of(definitions))


def state_after(events: list[Any], version: int = 1) -> ParticipantState:
    sections: dict[str, Any] = {}
    earned = balance = 0
    for event in events:
        sections = fold(event, sections, "2026-02-14T10:00:00Z")
        if isinstance(event, PointsAwarded):
            earned += event.amount
            balance += event.amount
    return ParticipantState(
        version=version, balance=balance, total_earned=earned, sections=sections
    )


def of_type(events: list[Any], cls: type) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


def test_tiers_are_ordered_by_level_not_by_code_or_threshold() -> None:
    # "a_top" sorts first by code; level decides, and the highest level reached wins.
    e = env(tier("a_top", 3, 1000), tier("b_mid", 2, 500), tier("c_low", 1, 100))
    events = decide(None, AwardPoints("u1", 600), e)
    [changed] = of_type(events, TierChanged)
    assert (changed.code, changed.level, changed.previous_code) == ("b_mid", 2, None)


def test_an_award_that_crosses_two_tiers_lands_on_the_higher_one_in_the_same_commit() -> None:
    e = env(tier("silver", 1, 100), tier("gold", 2, 500))
    state = ParticipantState(
        version=2,
        balance=150,
        total_earned=150,
        sections={
            "tier": {
                "code": "silver",
                "name": "Silver",
                "level": 1,
                "color": None,
                "achieved_at": "x",
            }
        },
    )
    events = decide(state, AwardPoints("u1", 400), e)
    assert [type(ev) for ev in events] == [PointsAwarded, TierChanged]
    assert (events[1].code, events[1].previous_code, events[1].previous_level) == (
        "gold",
        "silver",
        1,
    )


def test_spending_never_demotes_and_a_lower_threshold_does_not_downgrade() -> None:
    e = env(tier("silver", 1, 100), tier("gold", 2, 500))
    state = ParticipantState(
        version=3,
        balance=0,
        total_earned=600,
        sections={
            "tier": {"code": "gold", "name": "Gold", "level": 2, "color": None, "achieved_at": "x"}
        },
    )
    assert of_type(decide(state, AwardPoints("u1", 1), e), TierChanged) == []


def test_manual_tiers_are_not_reached_by_points_but_can_be_assigned() -> None:
    e = env(tier("vip", 9, 0, award_type="manual"), tier("base", 1, 0))
    events = decide(None, AwardPoints("u1", 5), e)
    assert [t.code for t in of_type(events, TierChanged)] == ["base"]
    assigned = decide(state_after(events), AssignTier("u1", "vip"), e)
    [changed] = of_type(assigned, TierChanged)
    assert (changed.code, changed.manual, changed.previous_code) == ("vip", True, "base")


def test_assigning_an_unknown_tier_is_refused() -> None:
    with pytest.raises(UnknownDefinition, match="Tier not found: nope"):
        decide(None, AssignTier("u1", "nope"), env())


def test_awarding_a_badge_twice_earns_it_once() -> None:
    e = env(badge("hero"))
    first = decide(None, AwardBadge("u1", "hero"), e)
    assert [type(ev).__name__ for ev in first] == ["ParticipantRegistered", "BadgeEarned"]
    assert decide(state_after(first), AwardBadge("u1", "hero"), e) == []


def test_automatic_badges_unlock_on_points_event_counts_and_streak_length() -> None:
    e = env(
        badge("rich", min_points=100),
        badge("regular", event_name="login", event_count=2),
        badge("steady", streak_code="daily", streak_length=3),
    )
    events = decide(None, AwardPoints("u1", 100), e)
    assert [b.code for b in of_type(events, BadgeEarned)] == ["rich"]
    state = state_after(events)
    once = decide(state, TrackEvent("u1", "login"), e)
    assert of_type(once, BadgeEarned) == []
    twice = decide(state_after([*events, *once]), TrackEvent("u1", "login"), e)
    assert [b.code for b in of_type(twice, BadgeEarned)] == ["regular"]
    streak = ParticipantState(version=1, sections={"streaks": {"daily": {"longest": 3}}})
    assert [b.code for b in of_type(decide(streak, TrackEvent("u1", "x"), e), BadgeEarned)] == [
        "steady"
    ]


def test_a_rule_turns_a_matching_event_into_points_and_its_consequences() -> None:
    e = env(
        rule(
            "buy",
            "purchase",
            points_property="amount",
            multiplier=2,
            conditions={"amount": {"gte": 10}, "currency": "EUR"},
        ),
        tier("silver", 1, 100),
        badge("rich", min_points=100),
    )
    events = decide(None, TrackEvent("u1", "purchase", {"amount": 60, "currency": "EUR"}), e)
    names = [type(ev).__name__ for ev in events]
    assert names[:3] == ["ParticipantRegistered", "EventTracked", "PointsAwarded"]
    assert sorted(names[3:]) == ["BadgeEarned", "TierChanged"]
    award = of_type(events, PointsAwarded)[0]
    assert (award.amount, award.reason) == (120, "rule:buy")
    assert award.metadata == {"event_id": of_type(events, EventTracked)[0].event_id, "rule": "buy"}


def test_a_rule_whose_conditions_fail_awards_nothing() -> None:
    e = env(rule("buy", "purchase", points=5, conditions={"amount": {"gte": 10}}))
    events = decide(None, TrackEvent("u1", "purchase", {"amount": 9}), e)
    assert of_type(events, PointsAwarded) == []
    assert of_type(events, EventTracked)[0].properties == {"amount": 9}


@pytest.mark.parametrize(
    ("conditions", "properties", "expected"),
    [
        ({"plan": "pro"}, {"plan": "pro"}, True),
        ({"plan": "pro"}, {}, False),
        ({"n": {"gt": 1, "lte": 3}}, {"n": 3}, True),
        ({"n": {"gt": 1, "lte": 3}}, {"n": 4}, False),
        ({"n": {"gt": 1}}, {"n": "2"}, False),
        ({"c": {"in": ["EUR", "USD"]}}, {"c": "USD"}, True),
        ({"c": {"ne": "EUR"}}, {"c": "EUR"}, False),
        ({"x": {"exists": False}}, {}, True),
        ({"x": {"exists": True}}, {}, False),
    ],
)
def test_conditions(conditions: dict[str, Any], properties: dict[str, Any], expected: bool) -> None:
    assert matches(conditions, properties) is expected


def test_rule_points_from_a_property_are_floored_and_bounded() -> None:
    assert rule_points({"points_property": "v", "multiplier": 1.5}, {"v": 3}) == 4
    assert rule_points({"points_property": "v"}, {"v": -3}) == 0
    assert rule_points({"points_property": "v"}, {"v": True}) == 0
    assert rule_points({"points": 7}, {}) == 7


def test_an_event_uses_its_own_timestamp_when_given() -> None:
    events = decide(None, TrackEvent("u1", "login", {}, "2026-01-01T00:00:00Z"), env())
    assert of_type(events, EventTracked)[0].occurred_at == "2026-01-01T00:00:00Z"

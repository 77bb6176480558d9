"""Challenges: objectives, conditions, windows, completion rewards in the same decision, counts."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import services.participants.features  # noqa: F401 - registers the deciders
from schemas.events import (
    BadgeEarned,
    ChallengeCompleted,
    ChallengeProgressed,
    Event,
    EventTracked,
    PointsAwarded,
    TierChanged,
)
from schemas.sections import fold
from services.api.challenge_views import view
from services.participants.commands import TrackEvent
from services.participants.domain import Env, ParticipantState, decide
from services.participants.engine import Catalog
from services.participants.features.challenges import counts

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def challenge(code: str = "c1", *objectives: dict[str, Any], **body: Any) -> tuple:
    objs = list(objectives) or [{"id": "o1", "event_name": "lesson", "count": 1}]
    return ("challenge", f"id-{code}", code, {"name": code.upper(), "objectives": objs, **body})


def catalog(*definitions: tuple) -> Catalog:
    return Catalog.of(definitions)


def env(cat: Catalog, now: datetime = NOW) -> Env:
    ids = itertools.count(1)
    return Env(new_id=lambda: f"id-{next(ids)}", now=now, catalog=cat)


def apply(state: ParticipantState | None, events: list[Event], at: str) -> ParticipantState:
    """The state after ``events`` (as the projector folds them)."""
    sections = dict(state.sections) if state else {}
    balance = state.balance if state else 0
    earned = state.total_earned if state else 0
    for event in events:
        sections = fold(event, sections, at)
        if isinstance(event, PointsAwarded):
            balance, earned = balance + event.amount, earned + event.amount
    version = (state.version if state else 0) + 1
    return ParticipantState(version, balance=balance, total_earned=earned, sections=sections)


class Participant:
    """Tracks events one command at a time, keeping the state between decisions."""

    def __init__(self, cat: Catalog, state: ParticipantState | None = None) -> None:
        self.cat, self.state = cat, state

    def track(
        self, name: str, props: dict[str, Any] | None = None, *, at: datetime = NOW
    ) -> list[Event]:
        e = env(self.cat, at)
        ts = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        events = decide(self.state, TrackEvent("u1", name, props or {}, ts), e)
        self.state = apply(self.state, events, e.at)
        return events

    @property
    def challenges(self) -> dict[str, Any]:
        return self.state.sections.get("challenges", {}) if self.state else {}


def of(events: list[Event], kind: type) -> list[Any]:
    return [e for e in events if isinstance(e, kind)]


def engine_part(events: list[Event]) -> list[Event]:
    """The events after the EventTracked (ParticipantRegistered and the fact itself dropped)."""
    tracked = next(i for i, e in enumerate(events) if isinstance(e, EventTracked))
    return events[tracked + 1 :]


# ---------------------------------------------------------------------------------------------
# objectives and conditions


def test_the_first_matching_event_enrols_and_counts_every_objective_in_the_progress() -> None:
    cat = catalog(
        challenge(
            "learn",
            {"id": "lessons", "event_name": "lesson", "count": 2},
            {"id": "quiz", "event_name": "quiz"},
        )
    )
    p = Participant(cat)
    assert engine_part(p.track("lesson")) == [
        ChallengeProgressed(code="learn", window="perpetual", progress={"lessons": 1, "quiz": 0})
    ]
    assert p.challenges["learn"] == {
        "window": "perpetual",
        "progress": {"lessons": 1, "quiz": 0},
        "completed_at": None,
    }


def test_an_objective_is_capped_at_its_count_and_a_capped_event_decides_nothing() -> None:
    cat = catalog(
        challenge(
            "learn",
            {"id": "lessons", "event_name": "lesson", "count": 2},
            {"id": "quiz", "event_name": "quiz"},
        )
    )
    p = Participant(cat)
    p.track("lesson")
    assert of(p.track("lesson"), ChallengeProgressed)[0].progress == {"lessons": 2, "quiz": 0}
    assert engine_part(p.track("lesson")) == []
    done = engine_part(p.track("quiz"))
    assert done == [
        ChallengeProgressed(code="learn", window="perpetual", progress={"lessons": 2, "quiz": 1}),
        ChallengeCompleted(code="learn", window="perpetual"),
    ]


def test_events_of_other_names_do_not_enrol() -> None:
    p = Participant(catalog(challenge("c1")))
    assert engine_part(p.track("login")) == []
    assert p.challenges == {}


def test_conditions_on_properties_decide_whether_an_event_counts() -> None:
    cat = catalog(
        challenge(
            "ace",
            {"id": "high", "event_name": "quiz", "count": 2, "conditions": {"score": {"gte": 80}}},
            {"id": "math", "event_name": "quiz", "conditions": {"topic": "math"}},
        )
    )
    p = Participant(cat)
    assert engine_part(p.track("quiz", {"score": 50})) == []
    assert of(p.track("quiz", {"score": 90}), ChallengeProgressed)[0].progress == {
        "high": 1,
        "math": 0,
    }
    # one event counts once for every objective it matches
    events = p.track("quiz", {"score": 95, "topic": "math"})
    assert of(events, ChallengeProgressed)[0].progress == {"high": 2, "math": 1}
    assert of(events, ChallengeCompleted) == [ChallengeCompleted(code="ace", window="perpetual")]


# ---------------------------------------------------------------------------------------------
# windows


def test_a_fixed_window_counts_events_in_starts_at_inclusive_to_ends_at_exclusive() -> None:
    window = {
        "type": "fixed",
        "starts_at": "2026-03-01T00:00:00Z",
        "ends_at": "2026-03-08T00:00:00Z",
    }
    obj = {"id": "o1", "event_name": "lesson", "count": 5}
    p = Participant(catalog(challenge("spring", obj, window=window)))
    start = datetime(2026, 3, 1, tzinfo=UTC)
    assert engine_part(p.track("lesson", at=start - timedelta(seconds=1))) == []
    assert engine_part(p.track("lesson", at=start + timedelta(days=7))) == []
    assert engine_part(p.track("lesson", at=start)) == [
        ChallengeProgressed(code="spring", window="fixed", progress={"o1": 1})
    ]
    last = start + timedelta(days=7, seconds=-1)
    assert of(p.track("lesson", at=last), ChallengeProgressed)[0].progress == {"o1": 2}


def test_a_fixed_window_uses_the_events_occurred_at_not_the_decision_time() -> None:
    window = {
        "type": "fixed",
        "starts_at": "2026-01-01T00:00:00Z",
        "ends_at": "2026-02-01T00:00:00Z",
    }
    cat = catalog(challenge("jan", window=window))
    backdated = TrackEvent("u1", "lesson", {}, "2026-01-15T00:00:00Z")
    assert of(decide(None, backdated, env(cat)), ChallengeCompleted) == [
        ChallengeCompleted(code="jan", window="fixed")
    ]
    assert of(decide(None, TrackEvent("u1", "lesson"), env(cat)), ChallengeProgressed) == []


def test_a_rolling_window_starts_at_the_first_event_and_restarts_after_its_days() -> None:
    obj = {"id": "o1", "event_name": "lesson", "count": 3}
    p = Participant(catalog(challenge("week", obj, window={"type": "rolling", "days": 7})))
    p.track("lesson")
    later = NOW + timedelta(days=6, hours=23)
    assert of(p.track("lesson", at=later), ChallengeProgressed) == [
        ChallengeProgressed(code="week", window="rolling:2026-03-01T12:00:00Z", progress={"o1": 2})
    ]
    restart = NOW + timedelta(days=7)
    assert of(p.track("lesson", at=restart), ChallengeProgressed) == [
        ChallengeProgressed(code="week", window="rolling:2026-03-08T12:00:00Z", progress={"o1": 1})
    ]
    # an event back-dated before the current window counts in no window
    assert engine_part(p.track("lesson", at=restart - timedelta(hours=1))) == []
    assert p.challenges["week"]["progress"] == {"o1": 1}


def test_a_rolling_challenge_is_completed_and_rewarded_again_in_a_new_window() -> None:
    definition = challenge("daily", window={"type": "rolling", "days": 1}, rewards={"points": 10})
    p = Participant(catalog(definition))
    first = p.track("lesson")
    assert of(first, ChallengeCompleted) == [
        ChallengeCompleted(code="daily", window="rolling:2026-03-01T12:00:00Z")
    ]
    assert engine_part(p.track("lesson", at=NOW + timedelta(hours=23))) == []
    again = p.track("lesson", at=NOW + timedelta(days=1))
    assert of(again, ChallengeCompleted) == [
        ChallengeCompleted(code="daily", window="rolling:2026-03-02T12:00:00Z")
    ]
    assert [e.amount for e in of(again, PointsAwarded)] == [10]
    assert p.state is not None and p.state.total_earned == 20


def test_a_completed_perpetual_challenge_ignores_further_events() -> None:
    p = Participant(catalog(challenge("once", rewards={"points": 5})))
    assert of(p.track("lesson"), ChallengeCompleted) == [
        ChallengeCompleted(code="once", window="perpetual")
    ]
    assert engine_part(p.track("lesson", at=NOW + timedelta(days=400))) == []
    assert p.state is not None and p.state.total_earned == 5


# ---------------------------------------------------------------------------------------------
# completion rewards, in the same decision


def test_completion_awards_points_and_a_badge_in_the_same_decision() -> None:
    cat = catalog(
        challenge("c1", rewards={"points": 50, "badge_code": "champ"}),
        ("badge", "b-1", "champ", {"name": "Champion", "rarity": "rare", "award_type": "manual"}),
    )
    events = decide(None, TrackEvent("u1", "lesson", {}, "2026-03-01T12:00:00Z"), env(cat))
    tracked = of(events, EventTracked)[0]
    assert engine_part(events) == [
        ChallengeProgressed(code="c1", window="perpetual", progress={"o1": 1}),
        ChallengeCompleted(code="c1", window="perpetual"),
        PointsAwarded(
            transaction_id="id-2",
            amount=50,
            balance_after=50,
            reason="challenge:c1",
            metadata={"challenge": "c1", "window": "perpetual", "event_id": tracked.event_id},
            base_amount=50,
        ),
        BadgeEarned(code="champ", name="Champion", rarity="rare", manual=False),
    ]


def test_a_badge_already_earned_or_unknown_is_not_earned_by_completion() -> None:
    cat = catalog(
        challenge("c1", rewards={"badge_code": "champ"}),
        challenge("c2", rewards={"badge_code": "nope"}),
        ("badge", "b-1", "champ", {"name": "Champion", "award_type": "manual"}),
    )
    badges = {"champ": {"name": "Champion", "rarity": None, "earned_at": "x", "manual": True}}
    state = ParticipantState(version=1, sections={"badges": badges})
    events = decide(state, TrackEvent("u1", "lesson"), env(cat))
    assert len(of(events, ChallengeCompleted)) == 2
    assert of(events, BadgeEarned) == []


def test_challenge_points_cause_a_tier_upgrade_in_the_same_decision() -> None:
    cat = catalog(
        challenge("c1", rewards={"points": 100}),
        (
            "tier",
            "t-1",
            "silver",
            {"name": "Silver", "level": 2, "criteria_config": {"min_points": 100}},
        ),
    )
    events = decide(ParticipantState(version=1), TrackEvent("u1", "lesson"), env(cat))
    assert [type(e) for e in events] == [
        EventTracked,
        ChallengeProgressed,
        ChallengeCompleted,
        PointsAwarded,
        TierChanged,
    ]
    assert of(events, TierChanged)[0].code == "silver"


def test_rule_points_and_challenge_points_are_both_awarded() -> None:
    cat = catalog(
        challenge("c1", rewards={"points": 30}),
        ("rule", "r-1", "r1", {"event_name": "lesson", "points": 5}),
    )
    events = decide(None, TrackEvent("u1", "lesson"), env(cat))
    assert [(e.amount, e.reason) for e in of(events, PointsAwarded)] == [
        (5, "rule:r1"),
        (30, "challenge:c1"),
    ]
    assert of(events, PointsAwarded)[-1].balance_after == 35


# ---------------------------------------------------------------------------------------------
# counts for the state


def test_counts_active_joined_open_challenges_and_completed_ones() -> None:
    week = challenge("week", window={"type": "rolling", "days": 7})
    fixed = challenge(
        "march",
        window={
            "type": "fixed",
            "starts_at": "2026-03-01T00:00:00Z",
            "ends_at": "2026-04-01T00:00:00Z",
        },
    )
    cat = catalog(challenge("open"), challenge("done"), week, fixed, challenge("untouched"))
    states = {
        "open": {"window": "perpetual", "progress": {"o1": 0}, "completed_at": None},
        "done": {
            "window": "perpetual",
            "progress": {"o1": 1},
            "completed_at": "2026-03-01T00:00:00Z",
        },
        "week": {"window": "rolling:2026-03-01T00:00:00Z", "progress": {}, "completed_at": None},
        "march": {"window": "fixed", "progress": {}, "completed_at": None},
        "retired": {"window": "perpetual", "progress": {}, "completed_at": "2026-02-01T00:00:00Z"},
        "gone": {"window": "perpetual", "progress": {}, "completed_at": None},
    }
    assert counts(states, cat, NOW) == {"active": 3, "completed": 2}
    # a week later the rolling window and, in April, the fixed window have ended
    assert counts(states, cat, datetime(2026, 4, 2, tzinfo=UTC)) == {"active": 1, "completed": 2}


def test_a_completed_rolling_window_stops_counting_once_it_ends() -> None:
    cat = catalog(challenge("week", window={"type": "rolling", "days": 7}))
    states = {
        "week": {
            "window": "rolling:2026-03-01T00:00:00Z",
            "progress": {"o1": 1},
            "completed_at": "2026-03-01T00:00:00Z",
        }
    }
    assert counts(states, cat, NOW) == {"active": 0, "completed": 1}
    assert counts(states, cat, NOW + timedelta(days=7)) == {"active": 0, "completed": 0}


def test_counts_of_no_challenges_are_zero() -> None:
    assert counts({}, Catalog(), NOW) == {"active": 0, "completed": 0}


# ---------------------------------------------------------------------------------------------
# the participant's view (GET /participants/{pid}/challenges)


def test_the_view_of_a_challenge_shows_objectives_percent_and_window() -> None:
    definition = catalog(
        challenge(
            "learn",
            {"id": "lessons", "label": "Lessons", "event_name": "lesson", "count": 3},
            {"id": "quiz", "event_name": "quiz"},
            window={"type": "rolling", "days": 7},
            description="Learn",
        )
    ).challenges[0]
    entry = {
        "window": "rolling:2026-03-01T00:00:00Z",
        "progress": {"lessons": 2, "quiz": 0},
        "completed_at": None,
    }
    got = view("learn", definition, entry, NOW, active=True)
    assert got == {
        "code": "learn",
        "name": "LEARN",
        "description": "Learn",
        "window": {
            "type": "rolling",
            "key": "rolling:2026-03-01T00:00:00Z",
            "days": 7,
            "starts_at": "2026-03-01T00:00:00Z",
            "ends_at": "2026-03-08T00:00:00Z",
            "is_open": True,
        },
        "objectives": [
            {
                "id": "lessons",
                "label": "Lessons",
                "event_name": "lesson",
                "target": 3,
                "progress": 2,
                "complete": False,
            },
            {
                "id": "quiz",
                "label": None,
                "event_name": "quiz",
                "target": 1,
                "progress": 0,
                "complete": False,
            },
        ],
        "progress_percent": 50,
        "joined": True,
        "is_active": True,
        "is_completed": False,
        "completed_at": None,
    }
    # once the rolling window has ended, the current window is a fresh one
    fresh = view("learn", definition, entry, NOW + timedelta(days=7), active=True)
    assert fresh["joined"] is False and fresh["progress_percent"] == 0
    assert fresh["window"]["key"] is None and fresh["window"]["is_open"] is True

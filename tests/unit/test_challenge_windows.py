"""Challenge windows at their edges, and what counts as active or completed (issue 16 mutants)."""

from __future__ import annotations

from datetime import timedelta

from schemas.events import ChallengeCompleted, ChallengeProgressed, PointsAwarded
from services.participants.features import challenges
from tests.unit.test_challenges import NOW, Participant, catalog, challenge, of

ROLLING_WEEK = {"type": "rolling", "days": 7}
LESSON_X3 = {"id": "o1", "event_name": "lesson", "count": 3}


def test_an_event_at_the_exact_start_of_a_rolling_window_counts_in_it() -> None:
    p = Participant(catalog(challenge("week", LESSON_X3, window=ROLLING_WEEK)))
    p.track("lesson")
    assert of(p.track("lesson"), ChallengeProgressed) == [
        ChallengeProgressed(code="week", window="rolling:2026-03-01T12:00:00Z", progress={"o1": 2})
    ]


def test_a_one_point_completion_reward_is_paid() -> None:
    p = Participant(catalog(challenge("tiny", rewards={"points": 1})))
    assert [e.amount for e in of(p.track("lesson"), PointsAwarded)] == [1]


def entry(window: str, completed_at: str | None = None) -> dict[str, object]:
    return {"window": window, "progress": {"o1": 1}, "completed_at": completed_at}


def test_a_joined_perpetual_challenge_is_active() -> None:
    cat = catalog(challenge("forever"))
    assert challenges.counts({"forever": entry("perpetual")}, cat, NOW) == {
        "active": 1,
        "completed": 0,
    }
    done = {"forever": entry("perpetual", "2026-03-01T00:00:00Z")}
    assert challenges.counts(done, cat, NOW) == {"active": 0, "completed": 1}


def test_an_entry_of_another_window_type_than_the_definition_has_now_counts_nowhere() -> None:
    cat = catalog(challenge("changed"))  # perpetual now; the participant joined a fixed window
    states = {"changed": entry("fixed", "2026-02-01T00:00:00Z")}
    assert challenges.counts(states, cat, NOW) == {"active": 0, "completed": 0}
    assert challenges.current(states["changed"], cat.challenges[0], NOW) is None


def test_a_rolling_window_ends_at_its_end_instant() -> None:
    cat = catalog(challenge("week", LESSON_X3, window=ROLLING_WEEK))
    states = {"week": entry("rolling:2026-03-01T12:00:00Z")}
    end = NOW + timedelta(days=7)
    assert challenges.counts(states, cat, end - timedelta(seconds=1))["active"] == 1
    assert challenges.counts(states, cat, end) == {"active": 0, "completed": 0}


def test_a_rolling_window_that_has_not_begun_is_not_active() -> None:
    cat = catalog(challenge("week", LESSON_X3, window=ROLLING_WEEK))
    states = {"week": entry("rolling:2026-03-02T12:00:00Z")}  # an event dated tomorrow
    assert challenges.counts(states, cat, NOW) == {"active": 0, "completed": 0}
    assert challenges.is_open(cat.challenges[0], "rolling:2026-03-02T12:00:00Z", NOW) is False
    assert challenges.is_open(cat.challenges[0], None, NOW) is True


def test_window_types_default_to_perpetual() -> None:
    assert challenges.window_type({}) == "perpetual"
    assert challenges.window_type({"window": {"type": "weird"}}) == "perpetual"
    assert challenges.window_type({"window": {"type": "fixed"}}) == "fixed"


def test_the_current_window_of_a_rolling_challenge_ends_at_its_end_instant() -> None:
    definition = catalog(challenge("week", LESSON_X3, window=ROLLING_WEEK)).challenges[0]
    joined = entry("rolling:2026-03-01T12:00:00Z")
    end = NOW + timedelta(days=7)
    assert challenges.current(joined, definition, end - timedelta(seconds=1)) is joined
    assert challenges.current(joined, definition, end) is None


def test_challenges_are_counted_in_display_order_then_code() -> None:
    obj = {"id": "o1", "event_name": "lesson", "count": 5}
    p = Participant(catalog(challenge("b", obj, display_order=0), challenge("a", obj)))
    assert [e.code for e in of(p.track("lesson"), ChallengeProgressed)] == ["a", "b"]
    p = Participant(catalog(challenge("a", obj, display_order=2), challenge("b", obj)))
    assert [e.code for e in of(p.track("lesson"), ChallengeProgressed)] == ["b", "a"]


def test_a_challenge_skipped_by_an_event_does_not_stop_the_ones_after_it() -> None:
    other = {"id": "o1", "event_name": "quiz", "count": 5}
    lesson = {"id": "o1", "event_name": "lesson", "count": 5}
    closed = {
        "type": "fixed",
        "starts_at": "2020-01-01T00:00:00Z",
        "ends_at": "2020-02-01T00:00:00Z",
    }
    p = Participant(
        catalog(
            challenge("a_other", other),  # no objective matches
            challenge("b_closed", lesson, window=closed),  # no open window
            challenge("c_done", rewards={"points": 1}),  # completed by the first lesson
            challenge("c_half", {**lesson, "count": 1}, {**other, "id": "o2"}),  # quiz to go
            challenge("d_open", lesson),
        )
    )
    p.track("lesson")
    assert [e.code for e in of(p.track("lesson"), ChallengeProgressed)] == ["d_open"]
    assert p.challenges["d_open"]["progress"] == {"o1": 2}


def test_progress_already_at_a_lowered_target_completes_on_the_next_matching_event() -> None:
    state_before = Participant(catalog(challenge("c", LESSON_X3)))
    state_before.track("lesson")
    state_before.track("lesson")  # progress 2 of 3
    lowered = {"id": "o1", "event_name": "lesson", "count": 2}
    p = Participant(catalog(challenge("c", lowered)), state_before.state)
    events = p.track("lesson")
    assert of(events, ChallengeProgressed) == []  # progress stays 2 of 2
    assert [e.code for e in of(events, ChallengeCompleted)] == ["c"]

"""A property: any definition the boundary accepts can be evaluated, on every event the boundary
accepts, by the deciders and by the challenge reads (issue 10, fault 6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import services.participants.features  # noqa: F401 - registers the deciders
from schemas.sections import fold
from services.api.challenge_views import view
from services.definitions.checks import problems
from services.participants.commands import RecordStreak, TrackEvent
from services.participants.domain import Env, ParticipantState, decide
from services.participants.engine import Catalog
from services.participants.features import challenges, streaks
from services.validation import ValidationFailed, validate

NOW = datetime(2026, 2, 14, 10, 0, tzinfo=UTC)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
)
anything = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)
dates = st.one_of(
    st.sampled_from(
        [
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "1970-01-01T00:00:00Z",
            "2999-12-31T23:59:59Z",
            "2026-02-14T10:00:00",
            "not a date",
        ]
    ),
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2999, 12, 31)).map(
        lambda d: d.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
    ),
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 3, 1)).map(
        lambda d: d.strftime("%Y-%m-%dT%H:%M:%S") + "+05:00"
    ),
)
operators = st.dictionaries(
    st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "in", "exists", "between"]),
    anything,
    max_size=3,
)
conditions = st.dictionaries(
    st.sampled_from(["total", "plan", "n"]), st.one_of(anything, operators), max_size=3
)
numbers = st.one_of(
    st.sampled_from([0, 1, 3650, 3651, 10**6, 10**9, 10**12, 1e300, 0.57, 1.15, 1000, 1000.5]),
    st.integers(1, 1000),  # mostly in range, so that many definitions are accepted
    st.floats(0.01, 1000, allow_nan=False),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
)
rule = st.fixed_dictionaries(
    {"code": st.just("r"), "name": st.just("R"), "event_name": st.just("buy")},
    optional={
        "conditions": conditions,
        "points": numbers,
        "points_property": st.sampled_from(["total", "n", "missing"]),
        "multiplier": numbers,
    },
)
window = st.one_of(
    st.fixed_dictionaries({"type": st.just("rolling")}, optional={"days": numbers}),
    st.fixed_dictionaries(
        {"type": st.just("fixed")}, optional={"starts_at": dates, "ends_at": dates}
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["perpetual", "other"]),
            "starts_at": dates,
            "days": numbers,
        },
    ),
)
challenge = st.fixed_dictionaries(
    {
        "code": st.just("c"),
        "name": st.just("C"),
        "objectives": st.lists(
            st.fixed_dictionaries(
                {"id": st.sampled_from(["a", "b"]), "event_name": st.just("buy")},
                optional={"count": numbers, "conditions": conditions},
            ),
            min_size=1,
            max_size=2,
            unique_by=lambda o: o["id"],
        ),
        "window": window,
    },
    optional={"rewards": st.fixed_dictionaries({}, optional={"points": numbers})},
)
streak = st.fixed_dictionaries(
    {"code": st.just("s"), "name": st.just("S")},
    optional={
        "timezone": st.sampled_from(
            ["UTC", "Europe/Paris", "Pacific/Kiritimati", "Etc/GMT+12", "Nope/Zone"]
        ),
        "grace_period_hours": numbers,
        "freeze_allowance": st.fixed_dictionaries(
            {},
            optional={
                "per_period": st.sampled_from(["week", "month"]),
                "max": numbers,
                "stockpile_max": numbers,
            },
        ),
    },
)
event_time = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2026, 2, 14, 10, 5))


def accepted(kind: str, body: dict[str, Any]) -> dict[str, Any] | None:
    try:
        checked = validate(f"definitions/{kind}", body, now=NOW)
    except ValidationFailed:
        return None
    fields = {k: v for k, v in checked.items() if k != "code"}
    return None if problems(kind, fields) else fields


EDGE_RULE = {
    "code": "r",
    "name": "R",
    "event_name": "buy",
    "points_property": "total",
    "multiplier": 1e300,
    "conditions": {"plan": {"in": 5}},
}
EDGE_CHALLENGE = {
    "code": "c",
    "name": "C",
    "objectives": [{"id": "a", "event_name": "buy"}],
    "window": {"type": "rolling", "days": 10**9},
}
FIXED_CHALLENGE = {
    "code": "c",
    "name": "C",
    "objectives": [{"id": "a", "event_name": "buy"}],
    "window": {"type": "fixed", "starts_at": "0001-01-01T00:00:00+01:00"},
}


@example(  # the definitions of fault 6 (refused now), with an event that matches them all
    rule_body=EDGE_RULE,
    challenge_body=EDGE_CHALLENGE,
    streak_body={"code": "s", "name": "S"},
    properties={"total": 1e15, "plan": 5},
    first=datetime(2026, 1, 1),
    later=0,
)
@example(
    rule_body={**EDGE_RULE, "multiplier": 2, "conditions": {}},
    challenge_body=FIXED_CHALLENGE,
    streak_body={"code": "s", "name": "S", "timezone": "Etc/GMT+12"},
    properties={"total": 1e15},
    first=datetime(1970, 1, 1),
    later=10**6,
)
@settings(
    max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    rule_body=rule,
    challenge_body=challenge,
    streak_body=streak,
    properties=st.dictionaries(st.sampled_from(["total", "plan", "n"]), anything, max_size=3),
    first=event_time,
    later=st.integers(min_value=0, max_value=10**6),
)
def test_accepted_definitions_never_make_the_engine_raise(
    rule_body: dict[str, Any],
    challenge_body: dict[str, Any],
    streak_body: dict[str, Any],
    properties: dict[str, Any],
    first: datetime,
    later: int,
) -> None:
    definitions = [
        (kind, f"id-{kind}", body["code"], fields)
        for kind, body in (
            ("rule", rule_body),
            ("challenge", challenge_body),
            ("streak", streak_body),
        )
        if (fields := accepted(kind, body)) is not None
    ]
    event(f"accepted: {sorted(d[0] for d in definitions)}")
    tracked = {"participant_id": "p", "event_name": "buy", "properties": properties}
    tracked["timestamp"] = first.strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        checked = validate("events.track", tracked, now=NOW)
    except ValidationFailed:
        return
    ids = count()
    env = Env(new_id=lambda: f"id{next(ids)}", now=NOW, catalog=Catalog.of(definitions))
    state = None
    for when in (checked["timestamp"], None):
        command = TrackEvent("p", "buy", checked["properties"], when)
        events = decide(state, command, env)
        event(f"events decided: {min(len(events), 3)}+")
        if any(d[0] == "streak" for d in definitions):
            events += decide(state, RecordStreak("p", "s", when), env)
        sections = dict(state.sections) if state else {}
        for e in events:
            sections = fold(e, sections, env.at)
        state = ParticipantState(version=(state.version if state else 0) + 1, sections=sections)
    read_at = NOW + timedelta(seconds=later)
    for code, entry in state.sections.get("challenges", {}).items():
        definition = next((d[3] | {"code": code} for d in definitions if d[0] == "challenge"), None)
        view(code, definition, entry, read_at, active=True)
    challenges.counts(state.sections.get("challenges", {}), env.catalog, read_at)
    streaks.best(state.sections.get("streaks", {}), env.catalog, read_at)

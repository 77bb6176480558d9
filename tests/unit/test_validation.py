"""The boundary (services/validation.py + schemas/json): every rule, with near-miss values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from services.definitions.checks import problems
from services.definitions.domain import DefinitionState, InvalidDefinition, decide_update
from services.inbound.messages import Rejected, parse
from services.participants.domain import Env
from services.participants.features.events import rule_points
from services.validation import (
    CONTROL,
    MAX_MAP_BYTES,
    MAX_MAP_KEYS,
    MAX_SAFE_NUMBER,
    ValidationFailed,
    _Strict,
    check_field,
    format_timestamp,
    schema_of,
    validate,
)

NOW = datetime(2026, 2, 14, 10, 0, 0, tzinfo=UTC)
ENV = Env(new_id=lambda: "id", now=NOW)


def errors(command: str, body: dict[str, Any], **kw: Any) -> list[dict[str, Any]]:
    try:
        validate(command, body, now=NOW, **kw)
    except ValidationFailed as exc:
        return exc.errors
    return []


def locs(command: str, body: dict[str, Any], **kw: Any) -> list[list[Any]]:
    return [e["loc"] for e in errors(command, body, **kw)]


def award(**fields: Any) -> dict[str, Any]:
    return {"participant_id": "p", "amount": 1, **fields}


# --------------------------------------------------------------------------------------------
# Strings


@pytest.mark.parametrize(
    "char", ["\x00", "\x01", "\t", "\n", "\x1f", "\x7f", "\x80", "\x85", "\x9f"]
)
def test_control_characters_are_refused_in_free_text(char: str) -> None:
    assert locs("points.award", award(reason=f"a{char}b")) == [["body", "reason"]]


@pytest.mark.parametrize("char", [" ", "~", "\xa0", "é", "\u202e", "😀"])
def test_printable_text_next_to_the_control_ranges_is_accepted(char: str) -> None:
    assert errors("points.award", award(reason=f"a{char}b")) == []


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (award(metadata={"a": {"b": "x\x00"}}), ["body", "metadata", "a", "b"]),
        (award(metadata={"a": ["ok", "x\x7f"]}), ["body", "metadata", "a", 1]),
        (award(metadata={"a": {"k\x00": 1}}), ["body", "metadata", "a", "k\x00"]),
        (award(metadata={"k\x00": 1}), ["body", "metadata"]),  # a top-level key: propertyNames
    ],
)
def test_control_characters_are_refused_at_any_depth_of_a_map_and_in_keys(
    body: dict[str, Any], loc: list[Any]
) -> None:
    assert loc in locs("points.award", body)


@pytest.mark.parametrize(
    ("command", "body", "field"),
    [
        ("participants.register", {"participant_id": "p", "display_name": "a\x00"}, "display_name"),
        ("participants.register", {"participant_id": "a\x00b"}, "participant_id"),
        ("events.track", {"participant_id": "p", "event_name": "a\x00"}, "event_name"),
        ("badges.award", {"participant_id": "p", "badge_code": "b\x00"}, "badge_code"),
        ("tiers.assign", {"participant_id": "p", "tier_code": "t\x00"}, "tier_code"),
        ("streaks.record", {"participant_id": "p", "streak_code": "s\x00"}, "streak_code"),
        ("rewards.claim", {"participant_id": "p", "reward_id": "r\x00"}, "reward_id"),
    ],
)
def test_the_poison_values_of_every_command_are_refused(
    command: str, body: dict[str, Any], field: str
) -> None:
    assert locs(command, body) == [["body", field]]


@pytest.mark.parametrize("char", ["\u202a", "\u202e", "\u2066", "\u2069"])
def test_ids_refuse_bidi_overrides_and_isolates(char: str) -> None:
    assert locs("points.award", {"participant_id": f"u{char}1", "amount": 1}) == [
        ["body", "participant_id"]
    ]
    assert locs("events.track", {"participant_id": "p", "event_name": f"e{char}"}) == [
        ["body", "event_name"]
    ]


@pytest.mark.parametrize("char", ["\u2029", "\u202f", "\u2065", "\u206a"])
def test_ids_accept_the_neighbours_of_the_bidi_ranges(char: str) -> None:
    assert errors("points.award", {"participant_id": f"u{char}1", "amount": 1}) == []


def test_id_lengths_are_bounded() -> None:
    assert errors("points.award", {"participant_id": "p" * 255, "amount": 1}) == []
    assert locs("points.award", {"participant_id": "p" * 256, "amount": 1}) == [
        ["body", "participant_id"]
    ]
    assert errors("events.track", {"participant_id": "p", "event_name": "e" * 100}) == []
    assert locs("events.track", {"participant_id": "p", "event_name": "e" * 101}) == [
        ["body", "event_name"]
    ]


def test_a_body_idempotency_key_is_held_to_the_header_pattern() -> None:
    assert errors("points.award", award(idempotency_key="order-42:a.b_c")) == []
    assert locs("points.award", award(idempotency_key="order 42")) == [["body", "idempotency_key"]]
    assert locs("points.award", award(idempotency_key="k" * 256)) == [["body", "idempotency_key"]]


def test_a_path_parameter_is_held_to_the_rule_of_its_body_field() -> None:
    assert check_field("points.award", "participant_id", "u1", ["path", "participant_id"]) == "u1"
    for bad in ("a\x00b", "a\u202eb", "p" * 256):
        with pytest.raises(ValidationFailed) as caught:
            check_field("points.award", "participant_id", bad, ["path", "participant_id"])
        assert caught.value.errors[0]["loc"] == ["path", "participant_id"]


@pytest.mark.parametrize(
    ("command", "field"),
    [
        ("points.award", "participant_id"),
        ("rewards.claim", "reward_id"),
        ("definitions/leaderboard", "code"),
        ("events.track", "event_name"),
    ],
)
def test_a_path_parameter_passes_the_quick_check_exactly_when_the_schema_accepts_it(
    command: str, field: str
) -> None:
    strict = _Strict(schema_of(command)["properties"][field])
    values = ["u1", "user_0000001", "a b", "é", "", "p" * 255, "p" * 256, "x" * 64, "x" * 65]
    values += [
        "a\x00b",
        "a\x1fb",
        "a\x7fb",
        "a\x9fb",
        "a\u202eb",
        "a\u2066b",
        "tab\there",
        "ok-1.2:3",
    ]
    for value in values:
        accepted = strict.is_valid(value) and not CONTROL.search(value)
        try:
            check_field(command, field, value, ["path", field])
        except ValidationFailed:
            assert not accepted, value
        else:
            assert accepted, value


def test_a_definition_description_may_span_lines_but_holds_no_other_control() -> None:
    tier = {"code": "gold", "name": "Gold", "level": 1, "criteria_config": {"min_points": 1}}
    assert errors("definitions/tier", {**tier, "description": "a\r\n\tb"}) == []
    assert locs("definitions/tier", {**tier, "description": "a\x00b"}) == [["body", "description"]]
    assert locs("definitions/tier", {**tier, "name": "a\nb"}) == [["body", "name"]]


# --------------------------------------------------------------------------------------------
# Timestamps


def stamp(value: str, command: str = "events.track") -> Any:
    body = {"participant_id": "p", "event_name": "e", "timestamp": value}
    if command == "streaks.record":
        body = {"participant_id": "p", "streak_code": "s", "timestamp": value}
    return validate(command, body, now=NOW)["timestamp"]


@pytest.mark.parametrize("command", ["events.track", "streaks.record"])
def test_the_window_starts_at_1970(command: str) -> None:
    assert stamp("1970-01-01T00:00:00Z", command) == "1970-01-01T00:00:00Z"
    with pytest.raises(ValidationFailed) as caught:
        stamp("1969-12-31T23:59:59Z", command)
    assert caught.value.errors[0]["loc"] == ["body", "timestamp"]
    assert caught.value.errors[0]["type"] == "value_error.datetime_range"


@pytest.mark.parametrize("command", ["events.track", "streaks.record"])
def test_the_window_ends_five_minutes_after_the_server_clock(command: str) -> None:
    assert stamp("2026-02-14T10:05:00Z", command) == "2026-02-14T10:05:00Z"
    assert stamp("2026-02-14T11:05:00+01:00", command) == "2026-02-14T10:05:00Z"
    for late in ("2026-02-14T10:05:01Z", "2027-02-14T10:00:00Z", "2030-01-01T00:00:00Z"):
        with pytest.raises(ValidationFailed):
            stamp(late, command)


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "9999-12-31T23:59:59Z",
        "0999-01-01T00:00:00Z",
    ],
)
def test_timestamps_off_the_time_line_or_out_of_window_are_refused_not_500(value: str) -> None:
    with pytest.raises(ValidationFailed):
        stamp(value)


@pytest.mark.parametrize(
    "value",
    [
        "2026-02-14",
        "2026-02-14T10:00",
        "2026-02-14 10:00:00Z",
        "20260214T100000Z",
        "2026-02-30T10:00:00Z",
        "2026-02-14T24:00:00Z",
        "2026-02-14T10:00:00+24:00",
        "2026-02-14T10:00:00+0100",
        "2026-W07-6T10:00:00Z",
        "yesterday",
        "",
    ],
)
def test_timestamps_are_parsed_strictly(value: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        stamp(value)
    assert caught.value.errors[0]["type"] in ("value_error.datetime", "schema.format")


def test_timestamps_are_written_as_utc_with_z_to_the_second() -> None:
    assert stamp("2026-02-14T09:00:00") == "2026-02-14T09:00:00Z"  # no offset: UTC
    assert stamp("2026-02-14T04:30:00-05:00") == "2026-02-14T09:30:00Z"
    assert stamp("2026-02-14T09:00:00.999999Z") == "2026-02-14T09:00:00Z"
    assert format_timestamp(datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC)) == "0999-01-02T03:04:05Z"


def test_definition_dates_may_lie_in_the_future_up_to_the_year_2999() -> None:
    def window(starts: str, ends: str) -> dict[str, Any]:
        return {
            "code": "c",
            "name": "C",
            "objectives": [{"id": "o", "event_name": "e"}],
            "window": {"type": "fixed", "starts_at": starts, "ends_at": ends},
        }

    ok = validate(
        "definitions/challenge",
        window("2026-03-01T01:00:00+01:00", "2999-12-31T23:59:59Z"),
        now=NOW,
    )
    assert ok["window"]["starts_at"] == "2026-03-01T00:00:00Z"
    assert locs(
        "definitions/challenge", window("2026-03-01T00:00:00Z", "3000-01-01T00:00:00Z")
    ) == [["body", "window", "ends_at"]]
    assert locs(
        "definitions/challenge", window("1969-12-31T23:59:59Z", "2027-01-01T00:00:00Z")
    ) == [["body", "window", "starts_at"]]
    reward = {"code": "r", "name": "R", "type": "coupon", "expires_at": "0001-01-01T00:00:00+01:00"}
    assert locs("definitions/reward", reward) == [["body", "expires_at"]]


# --------------------------------------------------------------------------------------------
# Numbers


@pytest.mark.parametrize("amount", [1.0, 1.5, True, "1", 0, 1_000_001])
def test_amount_must_be_an_integer_in_range(amount: Any) -> None:
    assert locs("points.award", {"participant_id": "p", "amount": amount}) == [["body", "amount"]]


def test_amount_one_is_an_integer() -> None:
    checked = validate("points.award", {"participant_id": "p", "amount": 1}, now=NOW)
    assert type(checked["amount"]) is int


def test_definition_integers_refuse_floats_too() -> None:
    tier = {"code": "gold", "name": "Gold", "level": 1.0, "criteria_config": {"min_points": 1}}
    assert locs("definitions/tier", tier) == [["body", "level"]]


@pytest.mark.parametrize("good", [MAX_SAFE_NUMBER, -MAX_SAFE_NUMBER, 1.5e15])
def test_numbers_in_maps_within_the_safe_range_are_accepted(good: float) -> None:
    assert (
        errors(
            "events.track", {"participant_id": "p", "event_name": "e", "properties": {"t": good}}
        )
        == []
    )


@pytest.mark.parametrize("bad", [MAX_SAFE_NUMBER + 1, -(MAX_SAFE_NUMBER + 1), 1e308, -1e308])
def test_numbers_in_maps_beyond_the_safe_range_are_refused(bad: float) -> None:
    body = {"participant_id": "p", "event_name": "e", "properties": {"a": [{"t": bad}]}}
    assert locs("events.track", body) == [["body", "properties", "a", 0, "t"]]


# --------------------------------------------------------------------------------------------
# Maps


def test_a_map_holds_at_most_100_keys_at_every_level() -> None:
    hundred = {f"k{i}": i for i in range(100)}
    assert errors("participants.register", {"participant_id": "p", "attributes": hundred}) == []
    assert locs(
        "participants.register", {"participant_id": "p", "attributes": {**hundred, "x": 1}}
    ) == [["body", "attributes"]]
    nested = {"a": {**hundred, "x": 1}}
    assert locs("participants.register", {"participant_id": "p", "attributes": nested}) == [
        ["body", "attributes", "a"]
    ]


def test_a_map_nests_at_most_5_levels() -> None:
    five: Any = 1
    for _ in range(5):
        five = {"a": five}
    assert errors("points.award", award(metadata=five)) == []
    assert locs("points.award", award(metadata={"a": five})) == [["body", "metadata"]]


def test_a_map_is_at_most_8_kib_as_json() -> None:
    def sized(n: int) -> dict[str, Any]:
        base = len(orjson.dumps({"k": ""}))
        return {"k": "x" * (n - base)}

    assert len(orjson.dumps(sized(MAX_MAP_BYTES))) == MAX_MAP_BYTES
    assert errors("points.award", award(metadata=sized(MAX_MAP_BYTES))) == []
    found = errors("points.award", award(metadata=sized(MAX_MAP_BYTES + 1)))
    assert [(e["loc"], e["type"]) for e in found] == [(["body", "metadata"], "too_large")]


# --------------------------------------------------------------------------------------------
# Unknown fields


def test_unknown_command_fields_are_dropped() -> None:
    checked = validate("points.award", award(bonus=5, reason="r"), now=NOW)
    assert checked == {"participant_id": "p", "amount": 1, "reason": "r"}


def test_unknown_definition_fields_are_dropped_at_every_level_but_maps_keep_their_keys() -> None:
    body = {
        "code": "c",
        "name": "C",
        "secret": "x",
        "objectives": [{"id": "o", "event_name": "e", "junk": 1, "conditions": {"plan": "pro"}}],
        "window": {"type": "rolling", "days": 3, "junk": 1},
        "rewards": {"points": 5, "junk": 1},
    }
    assert validate("definitions/challenge", body, now=NOW) == {
        "code": "c",
        "name": "C",
        "objectives": [{"id": "o", "event_name": "e", "conditions": {"plan": "pro"}}],
        "window": {"type": "rolling", "days": 3},
        "rewards": {"points": 5},
    }


# --------------------------------------------------------------------------------------------
# Definitions: ranges in the schema, meaning in services/definitions/checks.py


def rule(**fields: Any) -> dict[str, Any]:
    return {"code": "r", "name": "R", "event_name": "purchase", **fields}


@pytest.mark.parametrize(
    ("conditions", "ok"),
    [
        ({"total": {"gt": 10, "lte": 20.5}}, True),
        ({"plan": {"in": ["a", "b", 1, None]}}, True),
        ({"coupon": {"exists": False}}, True),
        ({"plan": "pro", "tags": ["a", "b"]}, True),
        ({"total": {"gt": "10"}}, False),
        ({"total": {"gte": True}}, False),
        ({"plan": {"in": "abc"}}, False),
        ({"plan": {"in": 5}}, False),
        ({"plan": {"in": [{"a": 1}]}}, False),
        ({"coupon": {"exists": "yes"}}, False),
        ({"total": {"between": [1, 2]}}, False),
        ({"total": {}}, False),
    ],
)
def test_condition_operators_take_values_of_the_right_type(
    conditions: dict[str, Any], ok: bool
) -> None:
    for kind, body in (
        ("rule", rule(points=1, conditions=conditions)),
        (
            "challenge",
            {
                "code": "c",
                "name": "C",
                "objectives": [{"id": "o", "event_name": "e", "conditions": conditions}],
            },
        ),
    ):
        assert (errors(f"definitions/{kind}", body) == []) is ok, kind


def test_the_two_condition_schemas_are_one() -> None:
    in_rule = schema_of("definitions/rule")["properties"]["conditions"]
    objective = schema_of("definitions/challenge")["properties"]["objectives"]["items"]
    assert objective["properties"]["conditions"] == in_rule


def test_multipliers_are_positive_and_at_most_1000() -> None:
    assert errors("definitions/rule", rule(points_property="t", multiplier=1000)) == []
    assert errors("definitions/rule", rule(points_property="t", multiplier=0.001)) == []
    for bad in (1000.01, 0, -1, 1e308):
        assert locs("definitions/rule", rule(points_property="t", multiplier=bad)) == [
            ["body", "multiplier"]
        ]


@pytest.mark.parametrize(
    ("kind", "body", "loc"),
    [
        ("challenge", {"window": {"type": "rolling", "days": 3651}}, ["window", "days"]),
        ("tier", {"level": 1001}, ["level"]),
        (
            "tier",
            {"criteria_config": {"min_points": 1_000_000_001}},
            ["criteria_config", "min_points"],
        ),
        (
            "badge",
            {"criteria_config": {"event_count": 1_000_001}},
            ["criteria_config", "event_count"],
        ),
        ("streak", {"freeze_allowance": {"max": 1001}}, ["freeze_allowance", "max"]),
        ("reward", {"points_cost": 1_000_000_001}, ["points_cost"]),
        ("rule", {"display_order": 1_000_001}, ["display_order"]),
    ],
)
def test_definition_numbers_are_bounded(kind: str, body: dict[str, Any], loc: list[Any]) -> None:
    assert ["body", *loc] in locs(f"definitions/{kind}", body, partial=True)


def test_rolling_windows_up_to_ten_years_are_accepted() -> None:
    assert (
        errors("definitions/challenge", {"window": {"type": "rolling", "days": 3650}}, partial=True)
        == []
    )


def fixed(starts: str | None, ends: str | None) -> dict[str, Any]:
    window: dict[str, Any] = {"type": "fixed"}
    if starts:
        window["starts_at"] = starts
    if ends:
        window["ends_at"] = ends
    return {"objectives": [{"id": "o", "event_name": "e"}], "window": window}


def test_a_fixed_window_starts_before_it_ends_and_may_be_open_on_one_side() -> None:
    assert problems("challenge", fixed("2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z")) == []
    same = problems("challenge", fixed("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"))
    assert [p["loc"] for p in same] == [["body", "window", "ends_at"]]
    assert problems("challenge", fixed("2026-01-01T00:00:00Z", None)) == []
    assert problems("challenge", fixed(None, "2026-01-01T00:00:00Z")) == []


def test_objective_ids_are_unique_and_rules_award_something() -> None:
    twice = {"objectives": [{"id": "o", "event_name": "e"}, {"id": "o", "event_name": "f"}]}
    assert [p["loc"] for p in problems("challenge", twice)] == [["body", "objectives", 1, "id"]]
    assert problems("rule", {"points": 5}) == []
    assert problems("rule", {"points_property": "total"}) == []
    assert [p["loc"] for p in problems("rule", {})] == [["body", "points"]]


@pytest.mark.parametrize("zone", ["Mars/Olympus", "America", "../etc", "Europe/Paris "])
def test_a_streak_zone_must_be_a_real_iana_zone(zone: str) -> None:
    assert problems("streak", {"timezone": zone})
    assert problems("streak", {"timezone": "Europe/Paris"}) == []


def test_a_patch_is_checked_on_the_merged_definition() -> None:
    state = DefinitionState(1, "id", "c", fixed("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"))
    bad = {
        "window": {
            "type": "fixed",
            "starts_at": "2026-03-01T00:00:00Z",
            "ends_at": "2026-02-01T00:00:00Z",
        }
    }
    with pytest.raises(InvalidDefinition):
        decide_update(state, bad, "challenge")
    assert decide_update(state, {"name": "New"}, "challenge")
    stored_bad = DefinitionState(
        1, "id", "c", fixed("2026-03-01T00:00:00Z", "2026-02-01T00:00:00Z")
    )
    with pytest.raises(InvalidDefinition):  # a definition stored before the checks: fix it first
        decide_update(stored_bad, {"name": "New"}, "challenge")
    assert decide_update(stored_bad, {"is_active": False}, "challenge")  # but it can be disabled


# --------------------------------------------------------------------------------------------
# Earn rules: exact decimal products, floored


@pytest.mark.parametrize(
    ("multiplier", "value", "points"),
    [
        (0.57, 100, 57),
        (0.29, 100, 29),
        (1.15, 100, 115),
        (0.1, 30, 3),
        (1.5, 3, 4),
        (1, 9.99, 9),
        (2, 1e308, 1_000_000),
        (1000, MAX_SAFE_NUMBER, 1_000_000),
        (2, -5, 0),
        (2, "100", 0),
        (2, True, 0),
        (2, None, 0),
    ],
)
def test_rule_points_are_the_floor_of_the_exact_decimal_product(
    multiplier: float, value: Any, points: int
) -> None:
    assert rule_points({"points_property": "t", "multiplier": multiplier}, {"t": value}) == points


# --------------------------------------------------------------------------------------------
# Inbound: the same boundary, dead-lettered as `schema`


def inbound(**fields: Any) -> bytes:
    return orjson.dumps({"command": "points.award", "tenant": "acme", **award(), **fields})


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"reason": "a\x00b"}, "reason"),
        ({"amount": 1.0}, "amount"),
        ({"participant_id": "u\u202e1"}, "participant_id"),
        ({"metadata": {"a": {"b": "\x00"}}}, "metadata.a.b"),
    ],
)
def test_inbound_messages_meet_the_same_boundary(fields: dict[str, Any], where: str) -> None:
    with pytest.raises(Rejected) as caught:
        parse(inbound(**fields), {"acme"}, now=NOW)
    assert caught.value.kind == "schema"
    assert caught.value.reason.startswith(f"{where}: ")


def test_inbound_timestamps_are_checked_against_the_clock_given() -> None:
    message = {
        "command": "streaks.record",
        "tenant": "acme",
        "participant_id": "p",
        "streak_code": "daily",
        "timestamp": "2026-02-14T10:05:01Z",
    }
    with pytest.raises(Rejected):
        parse(orjson.dumps(message), {"acme"}, now=NOW)
    later = parse(orjson.dumps(message), {"acme"}, now=NOW + timedelta(seconds=1))
    assert later.command.timestamp == "2026-02-14T10:05:01Z"


def test_inbound_unknown_fields_never_reach_the_command() -> None:
    parsed = parse(inbound(bonus=5), {"acme"}, now=NOW)
    assert parsed.command.participant_id == "p" and parsed.command.amount == 1


def test_the_schemas_state_the_same_map_limits_as_the_code() -> None:
    for command in ("participants.register", "participants.update", "points.award", "events.track"):
        for field, spec in schema_of(command)["properties"].items():
            if field in ("attributes", "metadata", "properties"):
                assert spec["maxProperties"] == MAX_MAP_KEYS, (command, field)
                assert f"{MAX_MAP_BYTES} bytes" in spec["description"], (command, field)


# --------------------------------------------------------------------------------------------
# The jsonschema-rs fast path: a "valid" from it must mean the python validator finds nothing

FAST_SCHEMAS = [
    *(c.removesuffix(".v1.json") for c in (
        "participants.register.v1.json", "participants.update.v1.json", "points.award.v1.json",
        "points.deduct.v1.json", "events.track.v1.json", "badges.award.v1.json",
        "tiers.assign.v1.json", "streaks.record.v1.json", "rewards.claim.v1.json",
        "points.award_batch.v1.json", "api_keys.create.v1.json",
    )),
    *(f"definitions/{k}" for k in (
        "badge", "challenge", "leaderboard", "reward", "rule", "streak", "tier", "webhook",
    )),
]  # fmt: skip
# Values where python's re / jsonschema and ECMA-262 / jsonschema-rs could part: line ends,
# Unicode digits and spaces, the BOM, bidi controls, integral floats, bools, huge integers.
TRICKY_TEXT = ["", "a", "a\n", "\n", "x\x1c", "x\x85", "\ufeff", "\u2028", "٣", "abc\u202a",
               "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z\n", "https://a.b/c", "https://a\x1cb",
               "k-1:x.y", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"]  # fmt: skip
TRICKY_NUMBERS = [0, 1, -1, 1.0, 2.5, -0.0, True, False, 10**6, 10**6 + 1, 2**53 + 1, 2**63,
                  10**30, float("inf")]  # fmt: skip


def _json_values() -> Any:
    from hypothesis import strategies as st

    leaves = st.one_of(
        st.none(), st.sampled_from(TRICKY_TEXT), st.sampled_from(TRICKY_NUMBERS),
        st.text(max_size=8), st.integers(), st.floats(allow_nan=False),
    )  # fmt: skip
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=6,
    )  # fmt: skip


def _near(schema: Any, depth: int = 0) -> Any:
    """Values near what ``schema`` accepts (its enums, types, properties), now and then anything."""
    from hypothesis import strategies as st

    if not isinstance(schema, dict) or depth > 4:
        return _json_values()
    options = []
    if "enum" in schema or "const" in schema:
        options.append(st.sampled_from(schema.get("enum", [schema.get("const")])))
    types = schema.get("type", [])
    for kind in [types] if isinstance(types, str) else types:
        if kind == "string":
            options.append(st.sampled_from([*TRICKY_TEXT, "vip", "gold", "x" * 101]))
        elif kind in ("integer", "number"):
            options.append(st.sampled_from(TRICKY_NUMBERS) | st.integers(-5, 5))
        elif kind == "boolean":
            options.append(st.booleans())
        elif kind == "null":
            options.append(st.none())
        elif kind == "array":
            options.append(st.lists(_near(schema.get("items"), depth + 1), max_size=3))
        elif kind == "object":
            options.append(_object(schema, depth + 1))
    for alternative in [*schema.get("anyOf", []), *schema.get("oneOf", [])]:
        options.append(_near({**schema, **alternative, "anyOf": [], "oneOf": []}, depth + 1))
    if not options:
        return _json_values()
    return st.one_of(*options) | _json_values() if depth else st.one_of(*options)


def _object(schema: dict[str, Any], depth: int = 0) -> Any:
    from hypothesis import strategies as st

    known = schema.get("properties", {})
    required = {k: _near(known.get(k), depth) for k in schema.get("required", [])}
    optional = {k: _near(v, depth) for k, v in known.items() if k not in required}
    extra = st.dictionaries(st.text(max_size=4), _json_values(), max_size=1)
    return st.builds(
        lambda fixed, more: {**more, **fixed},
        st.fixed_dictionaries(required, optional=optional),
        extra,
    )


@pytest.mark.parametrize("partial", [False, True])
@pytest.mark.parametrize("command", FAST_SCHEMAS)
def test_the_fast_validator_never_passes_what_the_python_validator_refuses(
    command: str, partial: bool
) -> None:
    from hypothesis import HealthCheck, given, settings

    from services.validation import _surely_valid, validator

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=_object(schema_of(command)))
    def check(body: dict[str, Any]) -> None:
        if _surely_valid(command, partial, body):
            assert list(validator(command, partial).iter_errors(body)) == [], body

    check()


def test_the_fast_validator_answers_for_valid_commands_and_refers_integral_floats() -> None:
    from services.validation import _surely_valid

    award = {"participant_id": "p1", "amount": 3, "reason": "r", "idempotency_key": "k-1"}
    assert _surely_valid("points.award", False, award)  # the fast path is on
    assert not _surely_valid("points.award", False, {**award, "amount": 3.0})
    assert errors("points.award", {**award, "amount": 3.0})[0]["loc"] == ["body", "amount"]
    assert not _surely_valid("points.award", False, {**award, "metadata": {"n": [1.0]}})
    assert errors("points.award", {**award, "metadata": {"n": [1.0]}}) == []

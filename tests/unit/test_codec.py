"""Commit encoding: round trip, the JSON Schema of the envelope, headers, upcasting."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import orjson
import pytest
from jsonschema import Draft202012Validator

from schemas import codec
from schemas.codec import CodecError, decode, encode
from schemas.events import (
    Causation,
    Commit,
    ParticipantProfileUpdated,
    ParticipantRegistered,
    PointsAwarded,
    PointsDeducted,
)

SCHEMA_DIR = Path(codec.__file__).parent / "json"

COMMIT = Commit(
    commit_id="c-1",
    tenant="acme",
    participant_id="user_123",
    expected_version=0,
    recorded_at="2026-02-14T10:00:00Z",
    causation=Causation("points.award", "http", "req-1", "order-1"),
    events=(
        ParticipantRegistered(auto_created=True),
        ParticipantProfileUpdated({"display_name": "Jane"}),
        PointsAwarded("tx-1", 50, 50, "signup", {"order_id": "o1"}, base_amount=50),
        PointsDeducted("tx-2", 20, 30, None, {}),
    ),
)


def test_a_commit_survives_encode_and_decode_unchanged() -> None:
    assert decode(encode(COMMIT)) == COMMIT


def test_the_encoded_commit_satisfies_its_published_json_schema() -> None:
    schema = json.loads((SCHEMA_DIR / "participant_commit.v1.json").read_text())
    errors = list(Draft202012Validator(schema).iter_errors(orjson.loads(encode(COMMIT))))
    assert errors == []


def test_the_schema_rejects_a_commit_with_a_negative_amount() -> None:
    schema = json.loads((SCHEMA_DIR / "participant_commit.v1.json").read_text())
    raw = orjson.loads(encode(COMMIT))
    raw["events"][2]["data"]["amount"] = -5
    assert list(Draft202012Validator(schema).iter_errors(raw))


def test_every_schema_file_is_a_valid_json_schema() -> None:
    files = sorted(SCHEMA_DIR.glob("*.json"))
    assert len(files) >= 5
    for path in files:
        Draft202012Validator.check_schema(json.loads(path.read_text()))


def test_headers_name_the_schema_version_and_the_event_types() -> None:
    assert dict(codec.headers(COMMIT)) == {
        "gamify-schema-version": b"1",
        "gamify-event-types": b"ParticipantRegistered,ParticipantProfileUpdated,PointsAwarded,PointsDeducted",
    }


@pytest.mark.parametrize("value", [b"not json", b"{}", b'{"commit_id": 5}', b"[]"])
def test_bytes_that_are_not_a_commit_raise_a_codec_error(value: bytes) -> None:
    with pytest.raises(CodecError):
        decode(value)


def test_a_v1_award_without_metadata_is_upcast_to_today_s_event() -> None:
    raw = orjson.loads(encode(COMMIT))
    raw["events"][2] = {
        "type": "PointsAwarded",
        "version": 1,
        "data": {"transaction_id": "tx-1", "amount": 50, "balance_after": 50, "reason": "signup"},
    }
    got = decode(orjson.dumps(raw))
    assert got.events[2] == PointsAwarded("tx-1", 50, 50, "signup", {}, base_amount=50)


def test_a_v1_profile_update_has_its_renamed_field_upcast() -> None:
    raw = orjson.loads(encode(COMMIT))
    raw["events"][1] = {
        "type": "ParticipantProfileUpdated",
        "version": 1,
        "data": {"fields": {"display_name": "Jane"}},
    }
    assert decode(orjson.dumps(raw)).events[1] == ParticipantProfileUpdated(
        {"display_name": "Jane"}
    )


def test_a_v2_profile_update_with_the_whole_map_is_upcast_to_a_replacement() -> None:
    raw = orjson.loads(encode(COMMIT))
    raw["events"][1] = {
        "type": "ParticipantProfileUpdated",
        "version": 2,
        "data": {"changes": {"avatar_url": None, "attributes": {"a": 1, "b": None}}},
    }
    assert decode(orjson.dumps(raw)).events[1] == ParticipantProfileUpdated(
        changes={"avatar_url": None},
        attributes_replaced=True,
        attributes_set={"a": 1, "b": None},
        attributes_removed=[],
    )
    raw["events"][1]["data"] = {"changes": {"display_name": "Jo"}}  # attributes untouched
    assert decode(orjson.dumps(raw)).events[1] == ParticipantProfileUpdated({"display_name": "Jo"})


def test_encoding_writes_the_current_class_version() -> None:
    versions = [e["version"] for e in orjson.loads(encode(COMMIT))["events"]]
    assert versions == [1, 3, 3, 2]


def test_an_event_newer_than_the_code_is_refused_rather_than_misread() -> None:
    raw = orjson.loads(encode(COMMIT))
    raw["events"][0]["version"] = 99
    with pytest.raises(CodecError, match="newer"):
        decode(orjson.dumps(raw))


def test_the_typed_decoder_reads_every_current_event_as_the_generic_path_does() -> None:
    from schemas.events import EVENT_CLASSES

    commit = replace(
        COMMIT,
        causation=replace(COMMIT.causation, fingerprint="ab" * 32),
        events=tuple(cls() for cls in EVENT_CLASSES.values()),
    )
    value = encode(commit)
    assert codec._decode_typed(value) == codec._decode_generic(value) == commit  # noqa: SLF001
    assert codec._decode_typed(encode(COMMIT)) == COMMIT  # noqa: SLF001


@pytest.mark.parametrize(
    "edit",
    [
        lambda raw: raw["causation"].update(request_id=7),  # any JSON value was read as it is
        lambda raw: raw["events"][2]["data"].update(amount=True),
        lambda raw: raw["events"][2].update(version=1),  # an older version: upcast
        lambda raw: raw.update(stream=None, schema_version=9),
    ],
)
def test_records_the_typed_decoder_refuses_are_read_as_before(edit: Callable[[dict], None]) -> None:
    raw = orjson.loads(encode(COMMIT))
    edit(raw)
    value = orjson.dumps(raw)
    assert decode(value) == codec._decode_generic(value)  # noqa: SLF001


def test_the_command_input_travels_in_the_causation_and_satisfies_the_schema() -> None:
    given = {"participant_id": "user_123", "amount": 50, "reason": None, "metadata": {}}
    commit = replace(COMMIT, causation=replace(COMMIT.causation, input=given))
    raw = orjson.loads(encode(commit))
    assert raw["causation"]["input"] == given
    assert decode(encode(commit)) == commit
    schema = json.loads((SCHEMA_DIR / "participant_commit.v1.json").read_text())
    assert list(Draft202012Validator(schema).iter_errors(raw)) == []


def test_a_commit_without_input_keeps_its_old_bytes() -> None:
    assert "input" not in orjson.loads(encode(COMMIT))["causation"]
    assert decode(encode(COMMIT)).causation.input is None


def test_an_input_that_is_not_an_object_is_not_a_commit() -> None:
    raw = orjson.loads(encode(COMMIT))
    raw["causation"]["input"] = [1]
    with pytest.raises(CodecError):
        decode(orjson.dumps(raw))


def test_the_decoder_builds_the_same_commit_objects_the_constructors_build() -> None:
    commit = replace(COMMIT, causation=replace(COMMIT.causation, fingerprint="ab" * 32))
    got = decode(encode(commit))
    assert type(got) is Commit and type(got.causation) is Causation
    assert got == commit and got.causation == commit.causation
    assert [getattr(got, f.name) for f in fields(Commit)] == [
        getattr(commit, f.name) for f in fields(Commit)
    ]
    assert repr(got) == repr(commit)
    assert hash(got.causation) == hash(commit.causation)
    assert pickle.loads(pickle.dumps(got)) == commit
    assert replace(got, tenant="other") == replace(commit, tenant="other")
    with pytest.raises(AttributeError):
        got.tenant = "other"  # type: ignore[misc]  # still frozen
    with pytest.raises(AttributeError):
        got.causation.source = "other"  # type: ignore[misc]


def test_current_records_are_read_in_one_typed_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*_: object) -> None:
        raise AssertionError("the generic path read a current record")

    monkeypatch.setattr(codec, "_decode_generic", refused)
    assert decode(encode(COMMIT)) == COMMIT


def test_the_twin_builder_refuses_a_class_it_cannot_stand_in_for() -> None:
    @dataclass(frozen=True, slots=True)
    class Checked:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True, slots=True)
    class Defaulted:
        a: list[int] = field(default_factory=list)

    @dataclass(frozen=True)
    class Unslotted:
        a: int

    for cls in (Checked, Defaulted, Unslotted):
        with pytest.raises(TypeError, match="update it"):
            codec._twin(cls)  # noqa: SLF001


@pytest.mark.parametrize(
    "edit",
    [
        lambda raw: raw["causation"].update(source=""),  # read as "http" on both paths
        lambda raw: raw["causation"].update(source=None),
        lambda raw: raw.update(stream=""),
        lambda raw: raw["events"][2]["data"].update(extra={"x": 1}),  # unknown keys ignored
        lambda raw: raw["events"][1].update(note="x"),
        lambda raw: raw["events"][3].update(type="NoSuchEvent"),
        lambda raw: raw["events"][0].pop("data"),
        lambda raw: raw["events"][3]["data"].pop("metadata"),  # a missing field: its default
    ],
)
def test_edge_records_read_the_same_on_the_typed_and_the_generic_path(
    edit: Callable[[dict], None],
) -> None:
    raw = orjson.loads(encode(COMMIT))
    edit(raw)
    value = orjson.dumps(raw)
    try:
        expected = codec._decode_generic(value)  # noqa: SLF001
    except CodecError:
        with pytest.raises(CodecError):
            decode(value)
        return
    assert decode(value) == expected


def test_the_typed_pass_reads_event_keys_in_any_order() -> None:
    raw = orjson.loads(encode(COMMIT))
    raw["events"] = [
        {"data": e["data"], "version": e["version"], "type": e["type"]} for e in raw["events"]
    ]
    assert codec._decode_typed(orjson.dumps(raw)) == COMMIT  # noqa: SLF001

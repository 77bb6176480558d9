"""The published contracts: JSON Schemas (events, commit, inbound), AsyncAPI and OpenAPI.

Each document is checked against the code it describes, so an event class, inbound command,
topic header, dead-letter kind or HTTP endpoint added without documentation fails here, and a
documented response shape that drifts from what the API answers fails the HTTP scenario below.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import fields
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from schemas import codec
from schemas.events import (
    API_KEY,
    DEFINITION,
    EVENT_CLASSES,
    PARTICIPANT,
    REWARD,
    ApiKeyIssued,
    ApiKeyRevoked,
    BadgeEarned,
    Causation,
    ChallengeCompleted,
    ChallengeProgressed,
    Commit,
    DefinitionCreated,
    DefinitionDeactivated,
    DefinitionUpdated,
    EventTracked,
    ParticipantErased,
    ParticipantProfileUpdated,
    ParticipantRegistered,
    PointsAwarded,
    PointsDeducted,
    PointsExpired,
    RewardClaimed,
    RewardCodeReleased,
    RewardCodeReserved,
    StreakBroken,
    StreakExtended,
    TierChanged,
)
from services.adapters.memory_event_log import InMemoryEventLog
from services.api import openapi as openapi_builder
from services.api import query_views
from services.api.app import create_app
from services.api.docs_views import DOCS_PATH
from services.api.engine_views import MAX_BATCH
from services.api.representations import STATE_SECTIONS
from services.config import Settings, parse_api_keys
from services.definitions.domain import KINDS, STREAM_KINDS
from services.inbound import processor
from services.inbound.messages import COMMANDS, Rejected, parse
from services.rate_limit_config import Rate, RateLimitSettings
from services.validation import ValidationFailed, validator

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "schemas" / "json"
EVENT_DIR = SCHEMA_DIR / "events"
ASYNCAPI = ROOT / "schemas" / "asyncapi.yaml"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
NOW = datetime(2026, 2, 14, 10, 0, tzinfo=UTC)  # the server clock inbound parsing is pinned to
BASE = "/api/v1/gamify"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def schema_files() -> list[Path]:
    return sorted(SCHEMA_DIR.rglob("*.json"))


@cache
def registry() -> Registry:
    """Every schema file under its $id, so relative-path $refs between the files resolve."""
    return Registry().with_resources(
        (load(p)["$id"], Resource.from_contents(load(p))) for p in schema_files()
    )


def schema_validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(
        load(SCHEMA_DIR / name),
        registry=registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def errors_of(validator: Draft202012Validator, instance: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]


def event_file(name: str) -> Path:
    return EVENT_DIR / f"{name}.v{EVENT_CLASSES[name].class_version}.json"


# --------------------------------------------------------------------------------------------
# JSON Schemas


@pytest.mark.parametrize("path", schema_files(), ids=lambda p: str(p.relative_to(SCHEMA_DIR)))
def test_every_schema_file_is_a_valid_json_schema_named_by_its_path(path: Path) -> None:
    schema = load(path)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == DIALECT
    assert schema["$id"] == f"gamify/{path.relative_to(SCHEMA_DIR).as_posix()}"


def test_every_event_class_has_a_schema_of_its_current_version_with_every_field_required() -> None:
    for name, cls in EVENT_CLASSES.items():
        assert event_file(name).is_file(), f"no schema for {name}: add {event_file(name).name}"
        schema = load(event_file(name))
        written = [f.name for f in fields(cls)]
        assert schema["required"] == written, name
        assert list(schema["properties"]) == written, name
        assert schema["additionalProperties"] is False, name
    for path in EVENT_DIR.glob("*.json"):
        name, version = re.fullmatch(r"(\w+)\.v(\d+)\.json", path.name).groups()  # type: ignore[union-attr]
        assert name in EVENT_CLASSES, f"{path.name}: no such event class"
        assert int(version) <= EVENT_CLASSES[name].class_version, path.name


def test_definition_events_name_every_definition_kind() -> None:
    kinds = load(event_file("DefinitionCreated"))["properties"]["kind"]["enum"]
    assert set(kinds) == set(STREAM_KINDS)


def test_the_commit_schema_lists_every_event_type_and_inlines_its_schema_unchanged() -> None:
    commit = load(SCHEMA_DIR / "participant_commit.v1.json")
    item = commit["properties"]["events"]["items"]
    assert set(item["properties"]["type"]["enum"]) == set(EVENT_CLASSES)
    assert set(commit["properties"]["stream"]["enum"]) == {PARTICIPANT, DEFINITION, REWARD, API_KEY}
    on_streams = [
        r["then"]["properties"]["events"]["items"]["properties"]["type"]["enum"]
        for r in commit["allOf"]
    ]
    assert sorted(t for types in on_streams for t in types) == sorted(EVENT_CLASSES), (
        "every event type belongs to exactly one stream kind"
    )
    rules = {r["if"]["properties"]["type"]["const"]: r["then"]["properties"] for r in item["allOf"]}
    assert set(rules) == set(EVENT_CLASSES)
    for name, cls in EVENT_CLASSES.items():
        key = f"{name}.v{cls.class_version}"
        assert rules[name] == {
            "version": {"const": cls.class_version},
            "data": {"$ref": f"#/$defs/{key}"},
        }
        standalone = {
            k: v for k, v in load(event_file(name)).items() if k not in ("$schema", "$id")
        }
        assert commit["$defs"][key] == standalone, (
            f"participant_commit.v1.json $defs/{key} differs from events/{key}.json: copy it over"
        )


def commit(stream: str, stream_id: str, command: str, *events: Any, version: int = 3) -> Commit:
    return Commit(
        commit_id=f"c-{stream}-{version}",
        tenant="acme",
        participant_id=stream_id,
        expected_version=version,
        recorded_at="2026-02-14T10:00:00Z",
        causation=Causation(command, "http", "req-1", "order-42", "9f" * 32),
        events=events,
        stream=stream,
    )


def realistic_commits() -> list[Commit]:
    """One commit per stream kind; together they hold every event type."""
    at, window = "2026-02-14T10:00:00Z", "rolling:2026-02-10T08:00:00Z"
    return [
        commit(
            PARTICIPANT,
            "user_123",
            "rewards.claim",
            ParticipantRegistered("Jane Doe", None, {"plan": "premium"}, auto_created=False),
            ParticipantProfileUpdated(
                {"display_name": "Jane Smith"}, False, {"plan": "pro"}, ["trial"]
            ),
            PointsAwarded("tx-1", 150, 150, "order", {"order": "o-1"}, 100, "1.5", at),
            TierChanged("silver", "Silver", 1, "#C0C0C0", None, None, True, "VIP promotion"),
            BadgeEarned("first_steps", "First Steps", "common", True, {"campaign": "spring"}),
            EventTracked("ev-1", "lesson_completed", {"course": "py101"}, at),
            ChallengeProgressed("learner", window, {"lessons": 2, "quiz": 1}),
            ChallengeCompleted("learner", window),
            StreakBroken("daily_login", 5),
            StreakExtended("daily_login", "2026-02-14", 1, 5, at, 0, 1, "2026-W07", False),
            RewardClaimed("claim-1", "reward-1", "Free coffee", "coupon", "CAFE-001", 50),
            PointsDeducted("tx-2", 50, 100, "reward:coffee", {"claim_id": "claim-1"}),
            PointsExpired("tx-3", "tx-1", 100, 0, at),
            ParticipantErased(),
        ),
        commit(
            DEFINITION,
            "tier:gold",
            "tier.create",
            DefinitionCreated("tier", "def-1", "gold", {"name": "Gold", "level": 3}),
            DefinitionUpdated({"name": "Gold+", "is_active": True}),
            DefinitionDeactivated(),
        ),
        commit(
            REWARD,
            "reward-1",
            "rewards.reserve",
            RewardCodeReserved("claim-1", "user_123", "CAFE-001", "claim-77"),
            RewardCodeReleased("claim-1", "CAFE-001"),
        ),
        commit(
            API_KEY,
            "key-1",
            "api_key.issue",
            ApiKeyIssued("key-1", "ab" * 32, "gmf_live_ab12", "Backend", "admin", 500),
            ApiKeyRevoked(),
        ),
    ]


def test_encoded_commits_with_every_event_type_satisfy_the_commit_and_event_schemas() -> None:
    commits = realistic_commits()
    assert {e.TYPE for c in commits for e in c.events} == set(EVENT_CLASSES)
    validator = schema_validator("participant_commit.v1.json")
    for c in commits:
        raw = orjson.loads(codec.encode(c))
        assert errors_of(validator, raw) == []
        for event in raw["events"]:
            name = event["type"]
            standalone = schema_validator(str(event_file(name).relative_to(SCHEMA_DIR)))
            assert errors_of(standalone, event["data"]) == [], name
    keyless = orjson.loads(codec.encode(commits[0]))
    del keyless["stream"]  # records written before streams existed
    assert errors_of(validator, keyless) == []


def _mutated(change: Any) -> dict[str, Any]:
    raw = orjson.loads(codec.encode(realistic_commits()[0]))
    change(raw)
    return raw


WRONG = {
    "negative amount": lambda r: r["events"][2]["data"].update(amount=-5),
    "amount as a string": lambda r: r["events"][2]["data"].update(amount="50"),
    "field missing": lambda r: r["events"][3]["data"].pop("level"),
    "unknown field": lambda r: r["events"][4]["data"].update(colour="red"),
    "null where a string is required": lambda r: r["events"][5]["data"].update(event_name=None),
    "malformed streak period": lambda r: r["events"][9]["data"].update(period="14/02/2026"),
    "old event version": lambda r: r["events"][2].update(version=1),
    "unknown event type": lambda r: r["events"][0].update(type="ParticipantDeleted"),
    "definition event on a participant stream": lambda r: r["events"].append(
        {"type": "DefinitionDeactivated", "version": 1, "data": {}}
    ),
    "unknown stream": lambda r: r.update(stream="leaderboard"),
    "a whole attribute map in a profile update's changes (v2) under version 3": lambda r: r[
        "events"
    ][1]["data"]["changes"].update(attributes={"plan": "pro"}),
}


@pytest.mark.parametrize("what", list(WRONG))
def test_a_wrong_commit_or_event_payload_fails(what: str) -> None:
    assert errors_of(schema_validator("participant_commit.v1.json"), _mutated(WRONG[what]))


INBOUND_SAMPLES: dict[str, dict[str, Any]] = {
    "participants.register": {
        "participant_id": "user_123",
        "display_name": "Jane",
        "attributes": {"plan": "pro"},
    },
    "participants.update": {"participant_id": "user_123", "attributes": {"plan": None}},
    "points.award": {
        "participant_id": "user_123",
        "amount": 25,
        "reason": "order",
        "metadata": {"order": "o-1"},
    },
    "points.deduct": {"participant_id": "user_123", "amount": 10, "reason": "shop"},
    "events.track": {
        "participant_id": "user_123",
        "event_name": "lesson_completed",
        "properties": {"n": 1},
        "timestamp": "2026-02-14T10:00:00Z",
    },
    "badges.award": {"participant_id": "user_123", "badge_code": "first_steps"},
    "tiers.assign": {"participant_id": "user_123", "tier_code": "gold"},
    "streaks.record": {"participant_id": "user_123", "streak_code": "daily_login"},
    "rewards.claim": {
        "participant_id": "user_123",
        "reward_id": "reward-1",
        "points_deduction": True,
    },
    "points.award_batch": {
        "awards": [
            {"participant_id": "user_123", "amount": 25, "idempotency_key": "order-1"},
            {"participant_id": "user_456", "amount": 5, "expires_at": "2027-01-01T00:00:00Z"},
        ]
    },
}


def test_the_inbound_schema_names_every_inbound_command() -> None:
    schema = load(SCHEMA_DIR / "inbound_message.v1.json")
    assert schema["properties"]["command"]["enum"] == list(COMMANDS)
    assert set(INBOUND_SAMPLES) == set(COMMANDS), "add a sample message for the new command"
    for command in COMMANDS:
        assert (SCHEMA_DIR / f"{command}.v1.json").exists(), command


@pytest.mark.parametrize("command", COMMANDS)
def test_a_sample_message_of_every_inbound_command_validates_and_parses(command: str) -> None:
    message = {
        "command": command,
        "tenant": "acme",
        **INBOUND_SAMPLES[command],
        "idempotency_key": "m-1",
    }
    assert errors_of(schema_validator("inbound_message.v1.json"), message) == []
    assert parse(orjson.dumps(message), {"acme"}, now=NOW).name == command


INBOUND_WRONG = {
    "unknown command": {"command": "points.transfer", "tenant": "acme", "participant_id": "u1"},
    "no tenant": {"command": "points.award", "participant_id": "u1", "amount": 5},
    "no participant": {"command": "participants.update", "tenant": "acme", "display_name": "J"},
    "no reward": {"command": "rewards.claim", "tenant": "acme", "participant_id": "u1"},
    "command field breaks its schema": {
        "command": "points.award",
        "tenant": "acme",
        "participant_id": "u1",
        "amount": 0,
    },
    "missing command field": {"command": "tiers.assign", "tenant": "acme", "participant_id": "u1"},
}


@pytest.mark.parametrize("what", list(INBOUND_WRONG))
def test_messages_the_processor_dead_letters_break_the_inbound_schema(what: str) -> None:
    message = INBOUND_WRONG[what]
    assert errors_of(schema_validator("inbound_message.v1.json"), message)
    with pytest.raises(Rejected):
        parse(orjson.dumps(message), {"acme"}, now=NOW)


# --------------------------------------------------------------------------------------------
# AsyncAPI


@cache
def asyncapi() -> dict[str, Any]:
    return yaml.safe_load(ASYNCAPI.read_text())


def refs_in(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs_in(value)


def pointer(document: Any, fragment: str) -> Any:
    node = document
    for part in fragment.lstrip("/").split("/") if fragment.strip("/") else []:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def test_the_asyncapi_document_names_the_three_topics_with_the_default_prefix() -> None:
    doc = asyncapi()
    assert doc["asyncapi"].startswith("3.")
    channels = doc["channels"]
    addresses = {c["address"] for c in channels.values()}
    assert addresses == {"{prefix}participant-events", "{prefix}inbound", "{prefix}inbound-dlq"}
    prefix = doc["components"]["parameters"]["prefix"]["default"]
    settings = Settings()
    assert prefix == settings.kafka_topic_prefix == "gamify."
    assert {a.replace("{prefix}", prefix) for a in addresses} == {
        settings.participant_events_topic,
        settings.inbound_topic,
        settings.dead_letter_topic,
    }
    assert "gamify." in doc["servers"]["local"]["description"]
    assert doc["servers"]["local"]["protocol"] == "kafka"
    for operation in doc["operations"].values():
        assert pointer(doc, operation["channel"]["$ref"].removeprefix("#")) in channels.values()


def test_every_asyncapi_reference_resolves_and_payloads_are_the_json_schemas() -> None:
    doc = asyncapi()
    for target in refs_in(doc):
        path, _, fragment = target.partition("#")
        if path:
            assert (ASYNCAPI.parent / path).is_file(), target
        else:
            pointer(doc, fragment)
    messages = doc["components"]["messages"]
    assert messages["commit"]["payload"]["schema"]["$ref"] == "./json/participant_commit.v1.json"
    assert (
        messages["inboundCommand"]["payload"]["schema"]["$ref"] == "./json/inbound_message.v1.json"
    )


def test_asyncapi_headers_match_what_the_code_writes() -> None:
    messages = asyncapi()["components"]["messages"]
    sample = realistic_commits()[0]
    headers = dict(codec.headers(sample))
    documented = messages["commit"]["headers"]
    assert (
        set(documented["required"])
        == set(headers)
        == {
            codec.HEADER_SCHEMA_VERSION,
            codec.HEADER_EVENT_TYPES,
        }
    )
    header_schema = Draft202012Validator(documented)
    assert errors_of(header_schema, {k: v.decode() for k, v in headers.items()}) == []
    dlq = messages["deadLetter"]["headers"]
    names = {
        f"{processor.HEADER_PREFIX}{n}"
        for n in ("reason", "error-type", "source-topic", "source-partition", "source-offset")
    }
    assert set(dlq["required"]) == set(dlq["properties"]) == names
    source = (ROOT / "services/inbound/messages.py").read_text() + (
        ROOT / "services/inbound/processor.py"
    ).read_text()
    kinds = set(re.findall(r'Rejected\(\s*"(\w+)"', source)) | set(
        re.findall(r'dead_letter\(\s*record,\s*"(\w+)"', source)
    )
    assert set(dlq["properties"]["gamify-dlq-error-type"]["enum"]) == kinds


def test_asyncapi_examples_satisfy_their_schemas() -> None:
    messages = asyncapi()["components"]["messages"]
    for example in messages["commit"]["examples"]:
        assert errors_of(schema_validator("participant_commit.v1.json"), example["payload"]) == []
        assert (
            errors_of(Draft202012Validator(messages["commit"]["headers"]), example["headers"]) == []
        )
    for example in messages["inboundCommand"]["examples"]:
        assert errors_of(schema_validator("inbound_message.v1.json"), example["payload"]) == []


# --------------------------------------------------------------------------------------------
# OpenAPI


def openapi() -> dict[str, Any]:
    """The document the app serves: the skeleton plus schemas/json (services/api/openapi.py)."""
    return openapi_builder.document()


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    keys = parse_api_keys("acme:k-acme,acme:k-admin:admin")
    return Settings(api_keys=keys, data_dir=tmp_path, **overrides)


def route_table(tmp_path: Path) -> set[tuple[str, str]]:
    app = create_app(settings(tmp_path), event_log=InMemoryEventLog())
    return {
        (route.resource.canonical, route.method.lower())
        for route in app.router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        and not route.resource.canonical.startswith(DOCS_PATH)  # a page on the document, no API
    }


def documented_operations() -> set[tuple[str, str]]:
    return {
        (path, method)
        for path, item in openapi()["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_the_openapi_document_is_valid() -> None:
    validate_openapi(openapi())
    assert openapi()["openapi"].startswith("3.1")


def test_the_openapi_document_describes_exactly_the_routes_of_the_app(tmp_path: Path) -> None:
    routes = route_table(tmp_path)
    documented = documented_operations()
    assert sorted(routes - documented) == [], "endpoints without documentation in openapi.json"
    assert sorted(documented - routes) == [], "documented endpoints the app does not serve"


def from_schema_files(schema: Any) -> set[str]:
    """The schemas/json components a schema names, following the skeleton's own components."""
    found: set[str] = set()
    for ref in openapi_builder.refs(schema):
        name = ref.removeprefix("#/components/schemas/").split("/")[0]
        if name.removesuffix(openapi_builder.PARTIAL) in openapi_builder.schema_files():
            found.add(name)
        elif name in openapi()["components"]["schemas"]:
            found |= from_schema_files(openapi()["components"]["schemas"][name])
    return found


def test_every_request_body_is_a_schema_from_schemas_json() -> None:
    bodies = 0
    for path, method in sorted(documented_operations()):
        body = openapi()["paths"][path][method].get("requestBody")
        if body is None:
            continue
        schema = body["content"]["application/json"]["schema"]
        assert from_schema_files(schema), f"{method.upper()} {path}: no schema from schemas/json"
        bodies += 1
    assert bodies == 16  # commands, definitions, api-keys, the award batch, webhook POST and PATCH
    admin = openapi()["paths"][f"{BASE}/admin/{{resource}}"]["post"]["requestBody"]
    assert from_schema_files(admin) == {f"definitions.{kind}.v1" for kind in KINDS.values()}
    batch = openapi()["components"]["schemas"]["EventBatchRequest"]["properties"]["events"]
    assert batch["maxItems"] == MAX_BATCH


def test_openapi_embeds_the_schemas_the_api_validates_with() -> None:
    embedded = openapi()["components"]["schemas"]
    commands = [
        *COMMANDS,
        "api_keys.create",
        *(f"definitions/{kind}" for kind in KINDS.values()),
    ]
    for command in commands:
        for partial, suffix in ((False, ""), (True, openapi_builder.PARTIAL)):
            name = f"{command.replace('/', '.')}.v1{suffix}"
            if name not in embedded:
                continue
            expected = {
                k: v
                for k, v in validator(command, partial).schema.items()
                if k not in ("$schema", "$id")
            }
            if not any(True for _ in openapi_builder.refs(expected)):
                assert embedded[name] == expected, name
    assert all(f"definitions.{k}.v1.partial" in embedded for k in KINDS.values())
    assert all("required" not in embedded[f"definitions.{k}.v1.partial"] for k in KINDS.values())


def test_the_generator_rewrites_file_refs_into_component_refs() -> None:
    needs: set[str] = set()
    schema = {
        "properties": {
            "id": {"$ref": "../common.v1.json#/$defs/id"},
            "self": {"$ref": "#/$defs/x"},
            "items": [{"$ref": "other.v1.json"}],
        }
    }
    rebased = openapi_builder.rebased(
        schema, "definitions/tier.v1.json", "definitions.tier.v1", needs
    )
    assert rebased["properties"] == {
        "id": {"$ref": "#/components/schemas/common.v1/$defs/id"},
        "self": {"$ref": "#/components/schemas/definitions.tier.v1/$defs/x"},
        "items": [{"$ref": "#/components/schemas/definitions.other.v1"}],
    }
    assert needs == {"common.v1", "definitions.other.v1"}


def test_a_skeleton_naming_an_unknown_schema_or_shadowing_a_file_does_not_build() -> None:
    skeleton = openapi_builder.skeleton()
    unknown = json.loads(json.dumps(skeleton))
    unknown["components"]["schemas"]["Error"]["properties"]["x"] = {
        "$ref": "#/components/schemas/points.refund.v1"
    }
    with pytest.raises(openapi_builder.SkeletonError, match="points.refund.v1"):
        openapi_builder.build(unknown)
    shadow = json.loads(json.dumps(skeleton))
    shadow["components"]["schemas"]["points.award.v1"] = {"type": "object"}
    with pytest.raises(openapi_builder.SkeletonError, match="points.award.v1"):
        openapi_builder.build(shadow)


def test_every_keyed_operation_documents_the_errors_it_can_answer() -> None:
    for path, method in documented_operations():
        operation = openapi()["paths"][path][method]
        statuses = set(operation["responses"])
        if operation.get("security") == []:
            continue
        expected = {"401", "422", "429", "503"}
        if path.startswith(f"{BASE}/admin/"):
            expected.add("403")
        if "requestBody" in operation:
            expected |= {"400", "413"}
        if "{" in path:
            expected.add("404")  # a path naming something that does not exist
        assert expected <= statuses, f"{method.upper()} {path}: {sorted(expected - statuses)}"
        if method != "get":
            shape = resolved(operation["responses"]["422"])["content"]["application/json"]
            assert {"$ref": "#/components/schemas/Error"} in shape["schema"].get("oneOf", []), (
                f"{method.upper()} {path}: a reused Idempotency-Key's 422 is a message"
            )


@given(st.lists(st.sampled_from([*STATE_SECTIONS, ",", " ", "\t", "x", "tiers"])).map("".join))
def test_the_documented_include_pattern_accepts_what_the_state_endpoint_accepts(raw: str) -> None:
    documented = re.search(openapi_builder.include_pattern(), raw) is not None
    try:
        query_views._include(raw)
        accepted = True
    except ValidationFailed:
        accepted = False
    assert documented == accepted


def test_admin_operations_need_the_admin_scope_and_public_ones_no_key() -> None:
    public = {"/healthz", "/readyz", "/metrics", f"{BASE}/openapi.json"}
    admin_elsewhere = {f"{BASE}/participants/{{participant_id}}/history"}  # support staff's
    for path, method in documented_operations():
        security = openapi()["paths"][path][method].get("security")
        if path in public:
            assert security == [], path
        elif path.startswith(f"{BASE}/admin/") or path in admin_elsewhere:
            assert security == [{"ApiKeyHeader": ["admin"]}, {"BearerAuth": ["admin"]}], path
        else:
            assert security is None, path  # the document's default: any key
    assert openapi()["security"] == [{"ApiKeyHeader": []}, {"BearerAuth": []}]


def absolute(node: Any) -> Any:
    """A copy of a schema whose local refs point into the OpenAPI document's registry entry."""
    if isinstance(node, dict):
        return {
            k: (f"urn:gamify:openapi{v}" if k == "$ref" and v.startswith("#") else absolute(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [absolute(v) for v in node]
    return node


@cache
def openapi_registry() -> Registry:
    doc = Resource.from_contents(openapi(), default_specification=DRAFT202012)
    return Registry().with_resource("urn:gamify:openapi", doc)


def openapi_validator(schema: dict[str, Any]) -> Draft202012Validator:
    if "$ref" in schema and schema["$ref"].startswith("#"):
        schema = pointer(openapi(), schema["$ref"].removeprefix("#"))
    return Draft202012Validator(
        absolute(schema),
        registry=openapi_registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def resolved(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = pointer(openapi(), node["$ref"].removeprefix("#"))
    return node


def media_with_examples() -> Iterator[tuple[str, dict[str, Any]]]:
    for path, method in sorted(documented_operations()):
        operation = openapi()["paths"][path][method]
        bodies = [("request", operation.get("requestBody", {}))]
        bodies += [(status, resolved(r)) for status, r in operation["responses"].items()]
        for where, holder in bodies:
            for media in holder.get("content", {}).values():
                if media.get("examples"):
                    yield f"{method.upper()} {path} {where}", media
    for name, response in openapi()["components"]["responses"].items():
        for media in response["content"].values():
            yield f"components/responses/{name}", media


def test_every_openapi_example_satisfies_its_schema() -> None:
    checked = 0
    for where, media in media_with_examples():
        validator = openapi_validator(media["schema"])
        for name, example in media["examples"].items():
            assert errors_of(validator, example["value"]) == [], f"{where} example {name}"
            checked += 1
    assert checked > 40


async def test_the_docs_page_and_its_assets_are_served_without_a_key(tmp_path: Path) -> None:
    """Swagger UI from the installed package (no CDN), pointed at the OpenAPI document."""
    app = create_app(settings(tmp_path), event_log=InMemoryEventLog())
    async with TestClient(TestServer(app)) as client:
        page = await client.get(DOCS_PATH)
        assert page.status == 200 and page.content_type == "text/html"
        html = await page.text()
        assert f'url: "{BASE}/openapi.json"' in html
        assert "http://" not in html and "https://" not in html  # nothing from the internet
        linked = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert f"{DOCS_PATH}/swagger-ui-bundle.js" in linked
        assert f"{DOCS_PATH}/swagger-ui.css" in linked
        types = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
        for href in linked:
            resp = await client.get(href)
            assert resp.status == 200, href
            assert resp.content_type == types[Path(href).suffix], href
            assert len(await resp.read()) > 100, href
        bundle = await (await client.get(f"{DOCS_PATH}/swagger-ui-bundle.js")).text()
        assert "SwaggerUIBundle" in bundle
        missing = await client.get(f"{DOCS_PATH}/swagger-ui-bundle.js.map")
        assert missing.status == 404 and (await missing.json())["detail"] == "Not Found"


async def test_the_document_is_served_without_a_key(tmp_path: Path) -> None:
    app = create_app(settings(tmp_path), event_log=InMemoryEventLog())
    async with TestClient(TestServer(app)) as client:
        resp = await client.get(f"{BASE}/openapi.json")
        assert resp.status == 200
        assert resp.content_type == "application/json"
        assert await resp.json() == openapi()


# --------------------------------------------------------------------------------------------
# The HTTP API answers what the document says (and writes commits the commit schema accepts)

ACME = {"X-API-Key": "k-acme"}
ADMIN = {"Authorization": "Bearer k-admin"}


class Contract:
    """Calls an endpoint by its documented path and checks the answer against the document."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    async def __call__(
        self,
        method: str,
        path: str,
        status: int,
        *,
        at: dict[str, str] | None = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        resp = await self.client.request(
            method,
            path.format(**at or {}),
            params=query,
            headers=ACME if headers is None else headers,
            **kwargs,
        )
        assert resp.status == status, await resp.text()
        operation = openapi()["paths"][path][method.lower()]
        documented = operation["responses"].get(str(status))
        assert documented is not None, f"{method} {path} answered {status}, not documented"
        response = resolved(documented)
        if "Idempotent-Replayed" in resp.headers:
            assert "Idempotent-Replayed" in response.get("headers", {}), f"{method} {path}"
        if status == 204:
            assert "content" not in response and not await resp.read(), f"{method} {path}"
            return None
        media = response["content"].get(resp.content_type)
        assert media is not None, f"{method} {path} {status}: {resp.content_type} not documented"
        if resp.content_type != "application/json":
            return await resp.text()
        body = await resp.json()
        assert errors_of(openapi_validator(media["schema"]), body) == [], (
            f"{method} {path} {status}"
        )
        return body


@pytest.fixture
async def contract(tmp_path: Path) -> AsyncIterator[tuple[Contract, InMemoryEventLog]]:
    log = InMemoryEventLog()
    app = create_app(settings(tmp_path, max_body_bytes=16 * 1024), event_log=log)
    async with TestClient(TestServer(app)) as client:
        yield Contract(client), log


P = f"{BASE}/participants/{{participant_id}}"


DEFINITIONS: dict[str, dict[str, Any]] = {
    "tiers": {
        "code": "silver",
        "name": "Silver",
        "level": 1,
        "criteria_config": {"min_points": 100},
    },
    "badges": {"code": "first_steps", "name": "First Steps", "criteria_config": {"min_points": 1}},
    "streaks": {
        "code": "daily_login",
        "name": "Daily",
        "freeze_allowance": {"per_period": "week", "max": 1},
    },
    "rules": {"code": "purchase", "name": "Purchase", "event_name": "purchase", "points": 10},
    "challenges": {
        "code": "learner",
        "name": "Learner",
        "objectives": [{"id": "lesson", "event_name": "lesson", "count": 2}],
        "rewards": {"points": 150},
    },
    "leaderboards": {
        "code": "weekly",
        "name": "Weekly",
        "metric": "points",
        "time_window": "weekly",
    },
    "rewards": {
        "code": "coffee",
        "name": "Coffee",
        "type": "coupon",
        "points_cost": 50,
        "codes": ["C-1"],
    },
}


async def define(call: Contract) -> str:
    """A definition of every kind, and the admin API's answers; returns the reward's id."""
    assert set(DEFINITIONS) == set(KINDS)
    admin, one = f"{BASE}/admin/{{resource}}", f"{BASE}/admin/{{resource}}/{{id}}"
    ids = {}
    for resource, body in DEFINITIONS.items():
        created = await call(
            "POST", admin, 201, headers=ADMIN, at={"resource": resource}, json=body
        )
        ids[resource] = created["id"]
    gold = {"code": "gold", "name": "Gold", "level": 2, "criteria_config": {"min_points": 10_000}}
    await call("POST", admin, 201, headers=ADMIN, at={"resource": "tiers"}, json=gold)
    retired = {"code": "retired", "name": "Retired"}
    retired_id = (
        await call("POST", admin, 201, headers=ADMIN, at={"resource": "badges"}, json=retired)
    )["id"]
    tier = {"resource": "tiers", "id": ids["tiers"]}
    await call(
        "GET", admin, 200, headers=ADMIN, at={"resource": "tiers"}, query={"is_active": "true"}
    )
    await call("GET", one, 200, headers=ADMIN, at=tier)
    await call("PATCH", one, 200, headers=ADMIN, at=tier, json={"color": "#C0C0C0"})
    badge = {"resource": "badges", "id": retired_id}
    assert (await call("DELETE", one, 200, headers=ADMIN, at=badge))["is_active"] is False
    await call("GET", admin, 403, at={"resource": "tiers"})
    await call("GET", admin, 404, headers=ADMIN, at={"resource": "quests"})
    await call("GET", one, 404, headers=ADMIN, at={"resource": "tiers", "id": "nope"})
    await call("POST", admin, 409, headers=ADMIN, at={"resource": "tiers"}, json=gold)
    await call("PATCH", one, 422, headers=ADMIN, at=tier, json={"code": "bronze"})
    await call("GET", admin, 422, headers=ADMIN, at={"resource": "tiers"}, query={"page": "0"})
    return str(ids["rewards"])


async def api_keys(call: Contract) -> None:
    """The API-key admin endpoints: issue, use, list, revoke."""
    keys, one = f"{BASE}/admin/api-keys", f"{BASE}/admin/api-keys/{{id}}"
    issued = await call("POST", keys, 201, headers=ADMIN, json={"name": "Backend"})
    await call(
        "GET", f"{P}/points", 404, headers={"X-API-Key": issued["key"]}, at={"participant_id": "k"}
    )
    await call("POST", keys, 422, headers=ADMIN, json={"name": "x", "scope": "root"})
    await call("GET", keys, 200, headers=ADMIN)
    await call("GET", keys, 403)
    await call("DELETE", one, 200, headers=ADMIN, at={"id": issued["id"]})
    await call("DELETE", one, 404, headers=ADMIN, at={"id": "nope"})


async def webhooks(call: Contract) -> None:
    """The webhook subscription endpoints (no delivery: the in-memory log has no dispatcher)."""
    hooks, hook = f"{BASE}/admin/webhooks", f"{BASE}/admin/webhooks/{{webhook_id}}"
    body = {"url": "https://hooks.example.com/gamify", "events": ["*"]}
    created = await call("POST", hooks, 201, headers=ADMIN, json=body)
    assert created["secret"].startswith("whsec_")
    at = {"webhook_id": created["id"]}
    private = {"url": "http://169.254.169.254/latest", "events": ["*"]}
    await call("POST", hooks, 422, headers=ADMIN, json=private)
    await call("GET", hooks, 200, headers=ADMIN)
    assert "secret" not in await call("GET", hook, 200, headers=ADMIN, at=at)
    await call("PATCH", hook, 200, headers=ADMIN, at=at, json={"events": ["badge.earned"]})
    await call("GET", f"{hook}/deliveries", 200, headers=ADMIN, at=at)
    redeliver = f"{hook}/deliveries/{{delivery_id}}/redeliver"
    await call("POST", redeliver, 404, headers=ADMIN, at={**at, "delivery_id": "nope"})
    await call("DELETE", hook, 200, headers=ADMIN, at=at)
    await call("GET", hook, 404, headers=ADMIN, at={"webhook_id": "nope"})


async def test_a_rate_limited_answer_is_documented(tmp_path: Path) -> None:
    limits = RateLimitSettings(per_key=Rate(1, 60))
    app = create_app(settings(tmp_path, rate_limits=limits), event_log=InMemoryEventLog())
    async with TestClient(TestServer(app)) as client:
        call = Contract(client)
        await call("GET", P, 404, at={"participant_id": "nobody"})
        await call("GET", P, 429, at={"participant_id": "nobody"})


async def test_every_endpoint_answers_what_the_document_says(
    contract: tuple[Contract, InMemoryEventLog],
) -> None:
    call, log = contract
    reward = {"reward_id": await define(call)}
    await webhooks(call)
    pid = {"participant_id": "user_123"}
    user = dict(pid)
    keyed = {**ACME, "Idempotency-Key": "order-42"}

    await call("POST", f"{BASE}/participants", 201, json={**user, "display_name": "Jane"})
    await call("PATCH", P, 200, at=pid, json={"attributes": {"team": "t42"}})
    await call("POST", f"{BASE}/points/award", 200, headers=keyed, json={**user, "amount": 150})
    await call("POST", f"{BASE}/points/award", 200, headers=keyed, json={**user, "amount": 150})
    await call("POST", f"{BASE}/points/deduct", 200, json={**user, "amount": 20})
    await call("POST", f"{BASE}/points/deduct", 400, json={**user, "amount": 5000})
    await call("POST", f"{BASE}/points/deduct", 409, headers=keyed, json={**user, "amount": 1})
    awards = [{**user, "amount": 5, "idempotency_key": "batch-1"}, {**user, "amount": 0}, "x"]
    await call("POST", f"{BASE}/points/award-batch", 200, json={"awards": awards})
    await call("POST", f"{BASE}/points/award-batch", 200, json={"awards": awards[:1]})
    await call("POST", f"{BASE}/points/award-batch", 422, json={"awards": []})
    await call("POST", f"{BASE}/points/award-batch", 400, data=b"[]")
    await call("POST", f"{BASE}/events", 200, json={**user, "event_name": "purchase"})
    batch = [
        {**user, "event_name": "lesson"},
        {**user, "event_name": "lesson"},
        {"x": 1},
        {**user, "event_name": "lesson", "idempotency_key": "order-42"},  # used by an award: 409
        "not an object",
    ]
    await call("POST", f"{BASE}/events/batch", 200, json={"events": batch})
    await call("POST", f"{BASE}/events/batch", 422, json={"events": []})
    await call("GET", f"{P}/events", 200, at=pid, query={"event_name": "lesson"})
    await call("POST", f"{BASE}/badges/award", 200, json={**user, "badge_code": "first_steps"})
    await call("POST", f"{BASE}/badges/award", 404, json={**user, "badge_code": "nope"})
    await call("GET", f"{P}/badges", 200, at=pid)
    await call("POST", f"{BASE}/tiers/assign", 200, json={**user, "tier_code": "gold"})
    await call("GET", f"{P}/tier", 200, at=pid)
    evaluate = f"{BASE}/admin/{{resource}}/{{id}}/evaluate"
    for resource, ref, status in (
        ("tiers", "silver", 200),
        ("badges", "first_steps", 200),
        ("badges", "retired", 409),
        ("rewards", "coffee", 404),
    ):
        at = {"resource": resource, "id": ref}
        await call("POST", evaluate, status, headers=ADMIN, at=at)
    await call("POST", evaluate, 403, at={"resource": "tiers", "id": "silver"})
    for day in ("01", "02", "12", "12"):  # the third tick breaks the streak, the last repeats it
        tick = {**user, "streak_code": "daily_login", "timestamp": f"2026-01-{day}T10:00:00Z"}
        await call("POST", f"{BASE}/streaks/record", 200, json=tick)
    await call("GET", f"{P}/streaks", 200, at=pid)
    await call("GET", f"{P}/challenges", 200, at=pid)
    await call("GET", f"{P}/challenges", 422, at=pid, query={"status": "done"})
    await call("GET", f"{BASE}/rewards", 200, query={"reward_type": "coupon"})
    claim, body = f"{BASE}/rewards/{{reward_id}}/claim", {**user, "points_deduction": True}
    keyed = {**ACME, "Idempotency-Key": "claim-1"}
    await call("POST", claim, 200, headers=keyed, at=reward, json=body)
    await call("POST", claim, 200, headers=keyed, at=reward, json=body)
    await call("POST", claim, 409, at=reward, json=user)
    await call("POST", claim, 404, at={"reward_id": "nope"}, json=user)
    await call("GET", f"{P}/rewards", 200, at=pid)
    await call("GET", f"{BASE}/admin/rewards/{{reward_id}}/stock", 200, headers=ADMIN, at=reward)
    await api_keys(call)
    board, rank = (
        f"{BASE}/leaderboards/{{code}}",
        f"{BASE}/leaderboards/{{code}}/rank/{{participant_id}}",
    )
    await call("GET", board, 200, at={"code": "weekly"}, query={"limit": "5"})
    await call("GET", board, 404, at={"code": "nope"})
    await call("GET", board, 422, at={"code": "weekly"}, query={"period": "hourly"})
    await call("GET", rank, 200, at={"code": "weekly", **pid}, query={"period": "all_time"})
    await call("GET", rank, 404, at={"code": "weekly", "participant_id": "nobody"})
    await call("GET", P, 200, at=pid)
    await call("GET", f"{P}/state", 200, at=pid)
    await call("GET", f"{BASE}/state/{{participant_id}}", 200, at=pid, query={"include": "tier"})
    await call("GET", f"{P}/points", 200, at=pid)
    await call("GET", f"{P}/points/transactions", 200, at=pid, query={"page_size": "2"})
    listing = f"{BASE}/admin/participants"
    found = await call(
        "GET", listing, 200, headers=ADMIN, query={"search": "JANE", "attribute.team": "t42"}
    )
    assert [p["participant_id"] for p in found["participants"]] == ["user_123"]
    await call("GET", listing, 200, headers=ADMIN, query={"sort": "balance", "order": "asc"})
    await call("GET", listing, 403)
    await call("GET", listing, 422, headers=ADMIN, query={"sort": "age"})
    erase = f"{BASE}/admin/participants/{{participant_id}}"
    await call("DELETE", erase, 403, at=pid)
    await call("DELETE", erase, 404, headers=ADMIN, at={"participant_id": "nobody"})
    await call("DELETE", erase, 204, headers=ADMIN, at=pid)
    assert (await call("GET", P, 200, at=pid))["display_name"] is None

    await call("GET", P, 404, at={"participant_id": "nobody"})
    await call("GET", P, 401, headers={}, at=pid)
    await call("GET", P, 401, headers={"X-API-Key": "wrong"}, at=pid)
    await call("POST", f"{BASE}/points/award", 400, data=b"not json")
    await call("POST", f"{BASE}/points/award", 422, json={**user, "amount": 0})
    await call(
        "POST", f"{BASE}/points/award", 413, json={**user, "amount": 1, "reason": "x" * 20_000}
    )
    for path in ("/healthz", "/readyz", "/metrics", f"{BASE}/openapi.json"):
        await call("GET", path, 200, headers={})

    validator = schema_validator("participant_commit.v1.json")
    written = [orjson.loads(value) for value in log.values]
    for raw in written:
        assert errors_of(validator, raw) == [], raw["causation"]["command"]
    types = {e["type"] for raw in written for e in raw["events"]}
    # compensation and the scheduler's expiry (tests/e2e/test_points_expiry_http.py): not reached here
    assert types == set(EVENT_CLASSES) - {"RewardCodeReleased", "PointsExpired"}

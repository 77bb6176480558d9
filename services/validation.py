"""The one boundary for everything that reaches the log, from HTTP and the inbound topic alike.

Shapes live in the JSON Schemas of ``schemas/json`` (types, lengths, ``pattern``,
``maxProperties``, ranges); this module applies them (integers must be JSON integers: ``1.0`` is
refused) and adds the few checks JSON Schema cannot say, in the same pass:

- no control characters (C0, DEL, C1) in any string or map key at any depth (a definition's
  ``description`` may hold tab, line feed and carriage return);
- maps (``attributes``, ``metadata``, ``properties``): at most ``MAX_MAP_DEPTH`` levels of nesting,
  ``MAX_MAP_KEYS`` keys per object and ``MAX_MAP_BYTES`` bytes serialized; numbers in them within
  ±``MAX_SAFE_NUMBER`` (they may take part in arithmetic: earn rules);
- ``format: date-time`` values parsed strictly (``YYYY-MM-DDTHH:MM:SS[.f][Z|±HH:MM]``, no offset
  means UTC), within a window, and rewritten as ``YYYY-MM-DDTHH:MM:SSZ``: occurrence times of
  commands from ``EARLIEST`` to ``now + FUTURE_SKEW``, definition dates from ``EARLIEST`` to
  before ``LATEST_SCHEDULE``;
- fields a schema does not list are dropped (not stored), where the schema lists its fields.

Errors are FastAPI-style ``{loc, msg, type}`` objects naming the field; nothing is written.
"""

from __future__ import annotations

import importlib.resources
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import jsonschema_rs
import orjson
from jsonschema import Draft202012Validator, validators

from services.limits import MAX_MAP_BYTES, MAX_MAP_DEPTH, MAX_MAP_KEYS, MAX_SAFE_NUMBER

MAX_JSON_DEPTH = 32
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9_\-:.]{1,255}$"

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
FUTURE_SKEW = timedelta(minutes=5)
LATEST_SCHEDULE = datetime(2999, 12, 31, 23, 59, 59, tzinfo=UTC)
# Command fields that say when something WILL happen (a credit's expiry), not when it happened:
# they take the definition window (up to LATEST_SCHEDULE), not now + FUTURE_SKEW.
SCHEDULE_FIELDS = frozenset({"expires_at"})

MAP_FIELDS = ("attributes", "metadata", "properties")

# How the schemas in schemas/json spell "no control characters" (as JSON text: backslash-u escapes).
NO_CONTROL = "^[^\\u0000-\\u001f"
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
CONTROL_BUT_LINES = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
MULTILINE_FIELDS = ("description",)
_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,9})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})?"
)


class ValidationFailed(Exception):
    """The input breaks the schema; ``errors`` are FastAPI-style ``{loc, msg, type}`` objects."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["msg"] if errors else "invalid input")
        self.errors = errors


def _strict_integer(_checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


_Strict = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _strict_integer),
)


@cache
def schema_of(command: str) -> dict[str, Any]:
    """The JSON Schema of a command (``points.award``) or a definition (``definitions/tier``)."""
    parts = f"{command}.v1.json".split("/")
    text = importlib.resources.files("schemas").joinpath("json", *parts).read_bytes()
    return orjson.loads(text)  # type: ignore[no-any-return]


@cache
def validator(command: str, partial: bool = False) -> Any:
    """The compiled validator of a schema; ``partial`` drops the top-level ``required`` list (and
    an ``anyOf`` of ``required`` lists, e.g. a rule's ``points`` or ``points_property``), for PATCH
    bodies."""
    schema = dict(schema_of(command))
    if partial:
        schema.pop("required", None)
        if _only_required(schema.get("anyOf", [])):
            schema.pop("anyOf", None)
    return _Strict(schema)


@cache
def _fast(command: str, partial: bool) -> Any:
    """jsonschema-rs compiled from the same schema, or None if it cannot compile it."""
    try:
        return jsonschema_rs.validator_for(validator(command, partial).schema)
    except Exception:  # e.g. a $ref it cannot resolve: the python validator alone then
        return None


def _surely_valid(command: str, partial: bool, body: Any) -> bool:
    """True only if the python validator would find no error; False means "ask it".

    jsonschema-rs (some 60x faster) says yes for a valid body; its no sends the body to the
    python validator for the errors the API names. Where the two differ, rs is the stricter one
    (ECMA-262 patterns: ``$`` is the end, ``\\d`` ASCII only; python's extra ``\\s`` members are
    control characters, refused anyway), except for JSON Schema's "1.0 is an integer", which
    ``_Strict`` refuses: a body holding an integral float always goes to the python validator.
    """
    fast = _fast(command, partial)
    if fast is None:
        return False
    try:
        return bool(fast.is_valid(body)) and not _integral_float(body)
    except (ValueError, TypeError, OverflowError):  # not JSON-shaped: let python judge
        return False


def _integral_float(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    if isinstance(value, dict):
        return any(_integral_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_integral_float(v) for v in value)
    return False


def validate(
    command: str,
    body: Any,
    *,
    now: datetime,
    location: str = "body",
    partial: bool = False,
) -> dict[str, Any]:
    """``body`` checked by the boundary and normalised (timestamps rewritten, unknown fields
    dropped), or ValidationFailed naming every bad field. ``now`` is the server clock."""
    if _depth(body) > MAX_JSON_DEPTH:
        raise ValidationFailed(
            [_error([location], f"nested deeper than {MAX_JSON_DEPTH} levels", "value_error.depth")]
        )
    found = [] if _surely_valid(command, partial, body) else sorted(
        validator(command, partial).iter_errors(body), key=lambda e: list(e.absolute_path)
    )  # fmt: skip
    errors = [
        _error([location, *e.absolute_path, *_missing(e)], _message(e), f"schema.{e.validator}")
        for e in found
    ]
    if not errors:
        errors = [*_text_errors(body, location), *_map_errors(body, location)]
    latest = LATEST_SCHEDULE if command.startswith("definitions/") else now + FUTURE_SKEW
    normalised = _normalise(schema_of(command), body, [location], latest, errors)
    if errors:
        raise ValidationFailed(errors)
    return normalised  # type: ignore[no-any-return]


def check_field(command: str, field: str, value: Any, location: list[Any]) -> Any:
    """One value (e.g. a path parameter) checked by the schema of ``command``'s ``field``."""
    strict, plain = _field_checks(command, field)
    if plain is not None and plain(value):
        return value
    errors = [
        _error(location, e.message, f"schema.{e.validator}") for e in strict.iter_errors(value)
    ]
    errors = errors or list(_text_errors(value, location[0], location[1:]))
    if errors:
        raise ValidationFailed(errors)
    return value


_PLAIN_STRING = frozenset({"type", "minLength", "maxLength", "pattern"})


@cache
def _field_checks(command: str, field: str) -> tuple[Any, Callable[[Any], bool] | None]:
    """The compiled validator of ``command``'s ``field`` and, when its schema is a plain string
    (only ``type``, ``minLength``, ``maxLength``, ``pattern``), a predicate that is true exactly
    when the validator and the control-character check both accept a value (path parameters
    are checked on every request: the predicate is what most of them need; a value it refuses
    goes through the validator for the error messages)."""
    schema = schema_of(command)["properties"][field]
    strict = _Strict(schema)
    if schema.get("type") != "string" or not set(schema) <= _PLAIN_STRING:
        return strict, None
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    pattern = re.compile(schema["pattern"]) if "pattern" in schema else None

    def plain(value: Any) -> bool:
        return (
            isinstance(value, str)
            and low <= len(value)
            and (high is None or len(value) <= high)
            and (pattern is None or pattern.search(value) is not None)  # jsonschema: re.search
            and CONTROL.search(value) is None
        )

    return strict, plain


# --------------------------------------------------------------------------------------------
# Strings and maps


def _walk(value: Any, path: list[Any]) -> Iterator[tuple[list[Any], Any, bool]]:
    """Every (path, value, is_key) below ``value``: map keys as well as values."""
    yield path, value, False
    if isinstance(value, dict):
        for key, item in value.items():
            yield [*path, key], key, True
            yield from _walk(item, [*path, key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, [*path, index])


def _text_errors(body: Any, location: str, base: list[Any] | None = None) -> Iterator[dict]:
    for path, value, is_key in _walk(body, list(base or [])):
        if not isinstance(value, str):
            continue
        lines = not is_key and len(path) == 1 and path[0] in MULTILINE_FIELDS
        if (CONTROL_BUT_LINES if lines else CONTROL).search(value):
            what = "key" if is_key else "value"
            yield _error(
                [location, *path],
                f"{what} must not contain control characters (U+0000-U+001F, U+007F-U+009F)",
                "value_error.control_character",
            )


def _map_errors(body: Any, location: str) -> Iterator[dict[str, Any]]:
    if not isinstance(body, dict):
        return
    for field in MAP_FIELDS:
        value = body.get(field)
        if not isinstance(value, dict):
            continue
        loc = [location, field]
        try:
            size = len(orjson.dumps(value))
        except TypeError:  # an integer beyond 64 bits: refused below as out of range
            size = 0
        if size > MAX_MAP_BYTES:
            yield _error(loc, f"at most {MAX_MAP_BYTES} bytes as JSON, got {size}", "too_large")
        elif _depth(value) > MAX_MAP_DEPTH:
            yield _error(loc, f"nested deeper than {MAX_MAP_DEPTH} levels", "value_error.depth")
        for path, item, is_key in _walk(value, loc):
            if is_key:
                continue
            if isinstance(item, dict) and len(item) > MAX_MAP_KEYS:
                yield _error(path, f"at most {MAX_MAP_KEYS} keys", "value_error.too_many_keys")
            number = isinstance(item, int | float) and not isinstance(item, bool)
            if number and abs(item) > MAX_SAFE_NUMBER:
                yield _error(
                    path, f"numbers must be within ±{MAX_SAFE_NUMBER}", "value_error.number_range"
                )


# --------------------------------------------------------------------------------------------
# Timestamps and unknown fields: a walk of the instance along its schema


def _normalise(
    schema: Any, value: Any, path: list[Any], latest: datetime, errors: list[dict[str, Any]]
) -> Any:
    if not isinstance(schema, dict):
        return value
    if schema.get("format") == "date-time" and isinstance(value, str):
        when = LATEST_SCHEDULE if path and path[-1] in SCHEDULE_FIELDS else latest
        return _timestamp(value, path, when, errors)
    if isinstance(value, dict) and "properties" in schema:
        known = schema["properties"]
        closed = "additionalProperties" not in schema and "patternProperties" not in schema
        return {
            key: _normalise(known.get(key), item, [*path, key], latest, errors)
            for key, item in value.items()
            if key in known or not closed
        }
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [
            _normalise(schema["items"], item, [*path, i], latest, errors)
            for i, item in enumerate(value)
        ]
    return value


def parse_timestamp(raw: str) -> datetime | None:
    """A strict ISO-8601 date-time (no offset: UTC) as an aware UTC datetime, to the second;
    None if it is not one or cannot be placed on the UTC time line."""
    found = _TIMESTAMP.fullmatch(raw)
    if found is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in found.groups()[:6])
    offset = found.group(7) or "Z"
    try:
        local = datetime(year, month, day, hour, minute, second)
        shift = timedelta(0)
        if offset != "Z":
            sign = -1 if offset[0] == "-" else 1
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            if hours > 23 or minutes > 59:
                return None
            shift = sign * timedelta(hours=hours, minutes=minutes)
        return (local - shift).replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def format_timestamp(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` in UTC (four-digit years, whatever the platform's strftime)."""
    m = moment.astimezone(UTC)
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"


def _timestamp(raw: str, path: list[Any], latest: datetime, errors: list[dict[str, Any]]) -> str:
    moment = parse_timestamp(raw)
    if moment is None:
        errors.append(
            _error(
                path,
                "must be an ISO-8601 date-time, YYYY-MM-DDTHH:MM:SS with Z or ±HH:MM "
                "(none means UTC)",
                "value_error.datetime",
            )
        )
        return raw
    if not EARLIEST <= moment <= latest:
        errors.append(
            _error(
                path,
                f"must be from {format_timestamp(EARLIEST)} to {format_timestamp(latest)}",
                "value_error.datetime_range",
            )
        )
        return raw
    return format_timestamp(moment)


# --------------------------------------------------------------------------------------------


def _missing(error: Any) -> list[str]:
    if error.validator == "required":
        found = re.match(r"^'(.+)' is a required property$", error.message)
        return [found.group(1)] if found else []
    return []


def _only_required(alternatives: list[Any]) -> bool:
    return all(isinstance(a, dict) and set(a) == {"required"} for a in alternatives)


def _message(error: Any) -> str:
    """jsonschema's message, except "needs at least one of: a, b" for an anyOf of required."""
    if (
        error.validator == "anyOf"
        and error.validator_value
        and _only_required(error.validator_value)
    ):
        names = [name for alt in error.validator_value for name in alt["required"]]
        return f"needs at least one of: {', '.join(names)}"
    if error.validator == "pattern" and str(error.validator_value).startswith(NO_CONTROL):
        bidi = "\\u202a" in str(error.validator_value)
        return "must not contain control characters (U+0000-U+001F, U+007F-U+009F)" + (
            " or bidi controls (U+202A-U+202E, U+2066-U+2069)" if bidi else ""
        )
    return str(error.message)


def _error(loc: list[Any], msg: str, type_: str) -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": type_}


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_JSON_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level

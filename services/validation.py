"""Validate request bodies against the command JSON Schemas in schemas/json (shared with inbound)."""

from __future__ import annotations

import importlib.resources
import re
from datetime import UTC, datetime
from functools import cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator

MAX_JSON_DEPTH = 32
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9_\-:.]{1,255}$"


class ValidationFailed(Exception):
    """The input breaks the schema; ``errors`` are FastAPI-style ``{loc, msg, type}`` objects."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["msg"] if errors else "invalid input")
        self.errors = errors


@cache
def validator(command: str, partial: bool = False) -> Draft202012Validator:
    """The compiled validator of a schema, e.g. ``points.award`` or ``definitions/tier``.

    ``partial`` drops the top-level ``required`` list (and an ``anyOf`` of ``required`` lists,
    e.g. a rule's ``points`` or ``points_property``), for PATCH bodies.
    """
    parts = f"{command}.v1.json".split("/")
    text = importlib.resources.files("schemas").joinpath("json", *parts).read_bytes()
    schema = orjson.loads(text)
    if partial:
        schema.pop("required", None)
        if _only_required(schema.get("anyOf", [])):
            schema.pop("anyOf", None)
    return Draft202012Validator(schema)


def validate(
    command: str, body: Any, *, location: str = "body", partial: bool = False
) -> dict[str, Any]:
    """Return ``body`` if it satisfies the command's schema, else raise ValidationFailed."""
    if _depth(body) > MAX_JSON_DEPTH:
        raise ValidationFailed(
            [_error([location], f"nested deeper than {MAX_JSON_DEPTH} levels", "value_error.depth")]
        )
    errors = sorted(
        validator(command, partial).iter_errors(body), key=lambda e: list(e.absolute_path)
    )
    if errors:
        raise ValidationFailed(
            [
                _error(
                    [location, *e.absolute_path, *_missing(e)], _message(e), f"schema.{e.validator}"
                )
                for e in errors
            ]
        )
    return body  # type: ignore[no-any-return]


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


def normalize_timestamp(
    body: dict[str, Any], field: str = "timestamp", *, location: str = "body"
) -> dict[str, Any]:
    """ISO-8601 ``body[field]`` as UTC with Z (a value without offset is taken as UTC)."""
    raw = body.get(field)
    if raw is None:
        return body
    try:
        moment = datetime.fromisoformat(raw)
    except (TypeError, ValueError):
        raise ValidationFailed(
            [_error([location, field], "must be an ISO-8601 date-time", "value_error.datetime")]
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return {**body, field: moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}

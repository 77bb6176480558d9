"""Reading requests: the JSON body, path and query parameters, the idempotency key."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import orjson
from aiohttp import web

from schemas import codec
from services.api.access import request_id
from services.api.errors import NotFound
from services.api.keys import deps_key
from services.api.middlewares import principal
from services.participants.handlers import Context
from services.validation import (
    CONTROL,
    IDEMPOTENCY_KEY_PATTERN,
    ValidationFailed,
    check_field,
    validate,
)

_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


# Content codings aiohttp decodes for every body (RFC 9110 §8.4). Any other, or a list of
# codings ("gzip, gzip"), would reach the JSON parser still encoded: 415 names the fault instead.
CONTENT_CODINGS = frozenset({"", "identity", "gzip", "deflate"})


def check_content_encoding(request: web.Request) -> None:
    """Raise 415 unless the body's ``Content-Encoding`` is absent, identity, gzip or deflate."""
    coding = request.headers.get("Content-Encoding", "").strip().lower()
    if coding not in CONTENT_CODINGS:
        shown = coding if len(coding) <= 40 and not CONTROL.search(coding) else "given"
        raise web.HTTPUnsupportedMediaType(
            text=f"Content-Encoding '{shown}' is not supported: send the body plain, gzip or deflate"
        )


async def json_body(request: web.Request, command: str | None) -> dict[str, Any]:
    """The request body as a JSON object, validated against the command's schema if named.

    Errors: 415 (``check_content_encoding``), 400 (not JSON, not an object), 408/413 (read
    timeout, size), 422 (the schema's rules, ``services.validation``).
    """
    check_content_encoding(request)
    raw = await request.read()
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise web.HTTPBadRequest(text="Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="Request body must be a JSON object")
    return body if command is None else validate(command, body, now=clock(request))


def clock(request: web.Request) -> datetime:
    """The server clock the boundary checks timestamps against (pinned in tests)."""
    return request.app[deps_key].clock()


def participant_id(request: web.Request) -> str:
    """The path's participant id, held to the same rule as ``participant_id`` in bodies."""
    return path_id(request, "participant_id", "points.award")


def path_id(request: web.Request, name: str, command: str) -> str:
    """A path parameter held to the rule of the field ``name`` of ``command``'s schema."""
    value = request.match_info[name]
    check_field(command, name, value, ["path", name])
    return value


def issued_id(request: web.Request, name: str) -> str:
    """A path id Gamify issued (a definition, webhook, delivery or API key id, or a code).

    Such ids never hold control characters, so one that does names nothing: 404, and it never
    reaches a store that would refuse it (PostgreSQL refuses NUL in text).
    """
    value = request.match_info[name]
    if CONTROL.search(value):
        raise NotFound(f"Not found: {name}")
    return value


def context(request: web.Request, body: dict[str, Any] | None = None) -> Context:
    """The command context: tenant from the key, idempotency key from header or legacy body.

    Either key must match ``IDEMPOTENCY_KEY_PATTERN`` (422 naming where it came from). With a
    key, the context carries the request's fingerprint: the body with the path parameters.
    """
    key = request.headers.get("Idempotency-Key")
    if key is not None:
        _check_key(key, ["header", "Idempotency-Key"])
    elif body is not None and body.get("idempotency_key") is not None:
        key = body["idempotency_key"]
        _check_key(key, ["body", "idempotency_key"])
    fingerprint = None
    if key is not None and body is not None:
        fingerprint = codec.fingerprint({**body, **request.match_info})
    return Context(
        tenant=principal(request).tenant,
        source="http",
        request_id=request_id(request),
        idempotency_key=key,
        fingerprint=fingerprint,
    )


def _check_key(key: object, loc: list[str]) -> None:
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValidationFailed(
            [
                {
                    "loc": loc,
                    "msg": f"must match {IDEMPOTENCY_KEY_PATTERN}",
                    "type": "value_error.pattern",
                }
            ]
        )


def bool_query(request: web.Request, name: str, default: bool) -> bool:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``, any case) or absent; else 422."""
    found = optional_bool_query(request, name)
    return default if found is None else found


def optional_bool_query(request: web.Request, name: str) -> bool | None:
    """Like ``bool_query``, but None when the parameter is absent (e.g. "active or not")."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise ValidationFailed(
        [{"loc": ["query", name], "msg": "must be true or false", "type": "value_error.bool"}]
    )


def int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ValidationFailed(
            [
                {
                    "loc": ["query", name],
                    "msg": f"must be an integer from {low} to {high}",
                    "type": "value_error.range",
                }
            ]
        )
    return value


def dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def json_answer(obj: Any, status: int = 200) -> web.Response:
    """``web.json_response(obj, dumps=dumps)`` without the text round trip: the same body and
    ``Content-Type: application/json; charset=utf-8``, encoded once."""
    return web.Response(
        body=orjson.dumps(obj), status=status, content_type="application/json", charset="utf-8"
    )


def replayed(response: web.StreamResponse, result: Any) -> web.StreamResponse:
    """``response`` with ``Idempotent-Replayed: true`` when ``result`` (a handler Result) is the
    original answer of a repeated Idempotency-Key: every keyed write says so the same way."""
    if getattr(result, "replayed", False):
        response.headers["Idempotent-Replayed"] = "true"
    return response

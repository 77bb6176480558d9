"""One middleware that turns every error into the API's {"detail": ...} body; no tracebacks."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from projections.db import is_unavailable
from services.api.access import CLIENT_CLOSED, client_gone
from services.api.keys import settings_key, write_health_key
from services.api.server import BodyReadTimeout
from services.definitions.domain import (
    CodeIsImmutable,
    DefinitionNotFound,
    DuplicateCode,
    InvalidDefinition,
)
from services.keys.domain import ApiKeyExists, ApiKeyNotFound
from services.participants.domain import (
    AttributesTooLarge,
    InsufficientPoints,
    ParticipantNotFound,
    Refused,
    UnknownDefinition,
)
from services.participants.handlers import (
    CommitQuarantined,
    ConcurrencyConflict,
    IdempotencyKeyMismatch,
    IdempotencyKeyReused,
)
from services.participants.writes import (
    RETRY_WITH_KEY,
    CommitUncertain,
    WriteScope,
    WriteTimedOut,
    write_scope,
)
from services.validation import ValidationFailed

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class NotFound(Exception):
    """A read-model row the request names does not exist."""


class Forbidden(Exception):
    """The key is valid but lacks the scope the endpoint needs."""


def error(status: int, detail: object, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"detail": detail}, status=status, headers=headers, dumps=lambda o: orjson.dumps(o).decode()
    )


# Headers of an aiohttp HTTPException that the JSON answer keeps (405's Allow, for one).
KEPT_HEADERS = frozenset({"Allow", "Retry-After", "WWW-Authenticate"})

STATUS_OF: list[tuple[type[Exception], int]] = [
    (ParticipantNotFound, 404),
    (NotFound, 404),
    (DefinitionNotFound, 404),
    (ApiKeyNotFound, 404),
    (ApiKeyExists, 409),
    (Forbidden, 403),
    (DuplicateCode, 409),
    (CodeIsImmutable, 422),
    (InsufficientPoints, 400),
    (AttributesTooLarge, 413),
    (UnknownDefinition, 404),
    (Refused, 409),
    (ConcurrencyConflict, 409),
    (IdempotencyKeyMismatch, 422),  # before its base class, IdempotencyKeyReused
    (IdempotencyKeyReused, 409),
    (CommitQuarantined, 422),
    (CommitUncertain, 503),
    (WriteTimedOut, 503),
]

RETRY_AFTER = {"Retry-After": "1"}
UNAVAILABLE = (
    "The service is temporarily unavailable (its store or log cannot be used right now); "
    "nothing was recorded. Retry."
)


WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The handler's response, or the error body its exception maps to (``_failure``)."""
    with write_scope() as scope:
        try:
            response = await handler(request)
        except Exception as exc:
            response = _failure(request, exc, scope)
    if request.method in WRITE_METHODS and response.status < 300:
        health = request.app.get(write_health_key)
        if health is not None:
            health.worked()
    return response


def _note_unusable(request: web.Request, exc: BaseException) -> None:
    """Tell /readyz that a write failed on a store or log that cannot be used right now."""
    health = request.app.get(write_health_key)
    if health is not None and request.method in WRITE_METHODS and is_unavailable(exc):
        health.failed(exc.__cause__ if isinstance(exc, CommitUncertain) and exc.__cause__ else exc)


def _failure(request: web.Request, exc: Exception, scope: WriteScope) -> web.StreamResponse:
    """The error body ``exc`` maps to; an HTTPException below 400 (a redirect) is raised again.

    Called while ``exc`` is being handled (its traceback is logged from here). The 503 rule:
    once a request attempted an append (``scope.appended``), any failure is a 503 with
    ``Retry-After`` saying to retry with the same Idempotency-Key, because a commit may be on
    the log; before that, a store that cannot be used is a 503 too (nothing was recorded). Only
    a programming error before any append is a 500.
    """
    if isinstance(exc, (ValidationFailed, InvalidDefinition)):
        return error(422, exc.errors)
    if isinstance(exc, web.RequestPayloadError):
        # The body's framing or encoding is broken (a bad chunk, an undecodable gzip body).
        response = error(400, "Request body is malformed (transfer or content encoding)")
        response.force_close()
        return response
    if isinstance(exc, BodyReadTimeout):
        response = error(408, str(exc))
        response.force_close()  # the rest of the body may still be on its way
        return response
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        limit = request.app[settings_key].max_body_bytes
        return error(413, f"Request body too large: at most {limit} bytes")
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        return error(
            exc.status,
            exc.reason if exc.text is None or exc.text.startswith(f"{exc.status}: ") else exc.text,
            {k: v for k, v in exc.headers.items() if k in KEPT_HEADERS},
        )
    if client_gone(request, exc):
        return _client_closed(request)
    for kind, status in STATUS_OF:
        if isinstance(exc, kind):
            if isinstance(exc, CommitUncertain):
                _note_unusable(request, exc)
                logger.warning(
                    "%s %s: commit %s uncertain: %s",
                    request.method,
                    request.path,
                    exc.commit_id,
                    exc.reason,
                )
            return error(status, str(exc), RETRY_AFTER if status == 503 else None)
    _note_unusable(request, exc)
    if scope.appended:
        logger.exception("error after an append on %s %s", request.method, request.path)
        return error(503, RETRY_WITH_KEY, RETRY_AFTER)
    if is_unavailable(exc):
        logger.warning(
            "%s %s: store unavailable: %s: %s",
            request.method,
            request.path,
            type(exc).__name__,
            exc,
        )
        return error(503, UNAVAILABLE, RETRY_AFTER)
    logger.exception("unhandled error on %s %s", request.method, request.path)
    return error(500, "Internal server error")


# What a batch item that failed in an unforeseen way answers: it may have been committed.
ITEM_UNKNOWN_FAILURE = (
    "This item could not be processed and may have been recorded; "
    "retry it with the same idempotency_key to get its result."
)


def item_error(exc: Exception) -> tuple[int, object]:
    """The status and ``detail`` one item of a batch answers for ``exc`` (the item's result).

    The same mapping as a single request (``STATUS_OF``; validation errors 422 with their list);
    anything else is 503, because the item may have reached the log before it failed.
    """
    if isinstance(exc, ValidationFailed):
        return 422, exc.errors
    for kind, status in STATUS_OF:
        if isinstance(exc, kind):
            # an item is retried by its own idempotency_key, not by the request's header
            return (status, str(exc)) if status != 503 else (503, ITEM_UNKNOWN_FAILURE)
    return 503, ITEM_UNKNOWN_FAILURE


def _client_closed(request: web.Request) -> web.Response:
    """The answer recorded for a request whose client left (never sent; not a server error)."""
    logger.debug("client closed the connection during %s %s", request.method, request.path)
    return error(CLIENT_CLOSED, "Client closed the connection")

"""One middleware that turns every error into the API's {"detail": ...} body; no tracebacks."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from services.api.access import CLIENT_CLOSED, client_gone
from services.api.keys import settings_key
from services.api.server import BodyReadTimeout
from services.definitions.domain import CodeIsImmutable, DefinitionNotFound, DuplicateCode
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
    NotYetProjected,
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
    (NotYetProjected, 503),
]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ValidationFailed as exc:
        return error(422, exc.errors)
    except web.RequestPayloadError:
        # The body's framing or encoding is broken (a bad chunk, an undecodable gzip body).
        response = error(400, "Request body is malformed (transfer or content encoding)")
        response.force_close()
        return response
    except BodyReadTimeout as exc:
        response = error(408, str(exc))
        response.force_close()  # the rest of the body may still be on its way
        return response
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[settings_key].max_body_bytes
        return error(413, f"Request body too large: at most {limit} bytes")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error(
            exc.status,
            exc.reason if exc.text is None or exc.text.startswith(f"{exc.status}: ") else exc.text,
            {k: v for k, v in exc.headers.items() if k in KEPT_HEADERS},
        )
    except Exception as exc:
        if client_gone(request, exc):
            return _client_closed(request)
        for kind, status in STATUS_OF:
            if isinstance(exc, kind):
                headers = {"Retry-After": "1"} if status == 503 else None
                return error(status, str(exc), headers)
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
            return status, str(exc)
    return 503, ITEM_UNKNOWN_FAILURE


def _client_closed(request: web.Request) -> web.Response:
    """The answer recorded for a request whose client left (never sent; not a server error)."""
    logger.debug("client closed the connection during %s %s", request.method, request.path)
    return error(CLIENT_CLOSED, "Client closed the connection")

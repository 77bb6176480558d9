"""One middleware that turns every error into the API's {"detail": ...} body; no tracebacks."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from services.api.keys import settings_key
from services.definitions.domain import (
    CodeIsImmutable,
    DefinitionNotFound,
    DuplicateCode,
    InvalidDefinition,
)
from services.participants.domain import (
    AttributesTooLarge,
    InsufficientPoints,
    ParticipantNotFound,
    Refused,
    UnknownDefinition,
)
from services.participants.handlers import (
    ConcurrencyConflict,
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


STATUS_OF: list[tuple[type[Exception], int]] = [
    (ParticipantNotFound, 404),
    (NotFound, 404),
    (DefinitionNotFound, 404),
    (Forbidden, 403),
    (DuplicateCode, 409),
    (CodeIsImmutable, 422),
    (InsufficientPoints, 400),
    (UnknownDefinition, 404),
    (Refused, 409),
    (ConcurrencyConflict, 409),
    (IdempotencyKeyReused, 409),
    (NotYetProjected, 503),
]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (ValidationFailed, InvalidDefinition, AttributesTooLarge) as exc:
        return error(422, exc.errors)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[settings_key].max_body_bytes
        return error(413, f"Request body too large: at most {limit} bytes")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error(
            exc.status,
            exc.reason if exc.text is None or exc.text.startswith(f"{exc.status}: ") else exc.text,
        )
    except Exception as exc:
        for kind, status in STATUS_OF:
            if isinstance(exc, kind):
                headers = {"Retry-After": "1"} if status == 503 else None
                return error(status, str(exc), headers)
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return error(500, "Internal server error")

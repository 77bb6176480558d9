"""Request ids, the access log, the HTTP metrics, and the headers every answer carries (``Server``,
``X-Request-ID``).

The access log (logger ``gamify.access``, INFO) writes one line per request once the app has
answered it::

    POST /api/v1/gamify/points/award 200 12.3ms rid=5f0c1b...

method, path (percent-encoded as sent, without the query string, which may carry personal data;
cut at ``MAX_LOGGED_PATH`` characters), status, duration in milliseconds and the request id.
Headers are never logged, so neither is an API key. A request whose client went away before the
answer is logged at DEBUG with status 499 (nginx's "client closed request").

The same middleware counts every request the app answered in ``gamify_http_requests_total`` and
``gamify_http_request_duration_seconds`` (services.metrics), by method, route (its canonical
path, ``unmatched`` when none matched) and status.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from services import metrics
from services.api.server import SERVER_NAME

access_logger = logging.getLogger("gamify.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
request_id_key = web.RequestKey("request_id_key", str)

REQUEST_ID_HEADER = "X-Request-ID"
# A client's own id is kept if it is this safe (UUIDs, hex, W3C trace ids); else a new one is made.
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,128}$"
CLIENT_CLOSED = 499
MAX_LOGGED_PATH = 512
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)
# New request ids: 16 random hex digits per process, then a counter of 16 hex digits (unique
# without a random draw per request).
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)


def request_id(request: web.Request) -> str:
    """The request's id: the client's ``X-Request-ID`` if it matches the pattern, else a new one
    (32 hex digits: the process's random prefix and a counter)."""
    found = request.get(request_id_key)
    if found is None:
        sent = request.headers.get(REQUEST_ID_HEADER)
        if sent is not None and _REQUEST_ID.match(sent):
            found = sent
        else:
            found = f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"
        request[request_id_key] = found
    return found


def client_gone(request: web.Request, exc: BaseException) -> bool:
    """Whether ``exc`` means the client closed the connection (e.g. mid-upload)."""
    transport = request.transport
    return isinstance(exc, OSError) and (transport is None or transport.is_closing())


@web.middleware
async def access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = request_id(request)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        resource = request.match_info.route.resource
        metrics.observe_request(
            request.method,
            resource.canonical if resource is not None else "unmatched",
            status,
            time.perf_counter() - started,
        )
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        level = logging.DEBUG if status == CLIENT_CLOSED else logging.INFO
        if access_logger.isEnabledFor(level):
            took = (time.perf_counter() - started) * 1000
            path = request.rel_url.raw_path
            if len(path) > MAX_LOGGED_PATH:
                path = path[:MAX_LOGGED_PATH] + "..."
            access_logger.log(
                level, "%s %s %d %.1fms rid=%s", request.method, path, status, took, rid
            )


def stamp(request: web.Request, response: web.StreamResponse) -> None:
    """Name the server without versions, and return the request id (every answer; called by
    services.api.middlewares.stamp_response, the app's ``on_response_prepare``)."""
    headers = response.headers
    headers["Server"] = SERVER_NAME
    headers[REQUEST_ID_HEADER] = request_id(request)

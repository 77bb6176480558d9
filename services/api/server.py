"""The HTTP server: aiohttp's, with JSON answers and read timeouts for what comes before routing.

aiohttp parses a request before any middleware runs, and answers a request it cannot parse (a
header over the size limit, a malformed request line) with ``text/plain`` that quotes the
offending bytes, logging them with a traceback. It has no public hook for those answers
(aio-libs/aiohttp#3287) and no timeout on reading headers or bodies, so this module supplies
its own connection handler through a small ``Server``/``AppRunner`` pair:

- a request the parser rejects is answered ``{"detail": ...}`` with 400 (a method it does
  not know, e.g. ``FOO``, says so), 414 (request target
  over ``MAX_REQUEST_LINE`` bytes) or 431 (a header line over ``MAX_FIELD_SIZE`` bytes, or more
  than ``MAX_HEADERS`` headers), without quoting the request, logged at debug without its bytes;
- headers must arrive within ``read_timeout`` seconds of their first byte (or of the connection
  opening), else the connection is answered 408 and closed;
- a body must arrive within ``read_timeout`` seconds of its headers, else reading it raises
  ``BodyReadTimeout`` (the API answers 408) and the connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadHttpMethod,
    ContentEncodingError,
    LineTooLong,
    PayloadEncodingError,
)
from aiohttp.web_protocol import RequestHandler

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("gamify.access")

SERVER_NAME = "Gamify"
# The two limits differ by a byte so a LineTooLong says which one it broke (its args carry the
# limit): the request target (414) or a header line (431). Both are aiohttp's defaults, ~8 KB.
MAX_REQUEST_LINE = 8192
MAX_FIELD_SIZE = 8190
MAX_HEADERS = 128
KEEPALIVE_TIMEOUT = 75.0  # idle keep-alive connections (aiohttp's run_app default)
# Pending connections the kernel queues (capped by net.core.somaxconn). aiohttp's default, 128,
# overflows under a burst of ~1,000 connects, and Linux then mangles their first bytes.
BACKLOG = 1024
# How long a connection answered 408 while its client still sends is kept open, discarding what
# arrives, so that the answer is read before a reset can destroy it (nginx lingers up to 5 s).
LINGER_S = 2.0


class BodyReadTimeout(TimeoutError):
    """The request body did not arrive within the read timeout (answered 408)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(f"Request body not received within {round(timeout * 1000)} ms")


def parse_error(exc: BaseException | None) -> tuple[int, str]:
    """The status and detail for a request aiohttp's parser rejected; never quotes the request."""
    if isinstance(exc, LineTooLong):
        if len(exc.args) > 1 and str(exc.args[1]) == str(MAX_REQUEST_LINE):
            return 414, f"Request target too long: at most {MAX_REQUEST_LINE} bytes"
        return 431, f"Request header too large: at most {MAX_FIELD_SIZE} bytes per header line"
    if isinstance(exc, ContentEncodingError):  # a coding the parser knows but cannot decode here
        return 415, "Content-Encoding is not supported: send the body plain, gzip or deflate"
    if isinstance(exc, BadHttpMethod):
        # A method token the parser does not know (FOO, or a line that is not HTTP at all).
        # RFC 9110 §15.6.2 allows 501, but a 5xx would count scanners' garbage as server errors.
        return 400, "Request method not recognised"
    if isinstance(exc, BadHttpMessage) and "Too many headers" in str(exc):
        return 431, f"Too many request headers: at most {MAX_HEADERS}"
    return 400, "Malformed HTTP request"


def raw_response(status: int, reason: str, detail: str, request_id: str) -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 answer, for a connection with no request object."""
    body = orjson.dumps({"detail": detail})
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\nServer: {SERVER_NAME}\r\n"
        f"X-Request-ID: {request_id}\r\n\r\n"
    )
    return head.encode() + body


class GamifyRequestHandler(RequestHandler):
    """aiohttp's connection handler with JSON parser errors and header/body read timeouts."""

    def __init__(self, manager: web.Server, *, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.read_timeout = read_timeout
        self.header_timer: asyncio.TimerHandle | None = None
        self.body_timer: asyncio.TimerHandle | None = None
        self.body: Any = None  # the payload of the latest request whose body is still arriving
        self.partial = False  # bytes of a request's headers arrived, the headers did not end
        self.discarding = False  # answered 408: whatever still arrives is dropped until close
        self.body_timed_out = False  # a body took over read_timeout: answered 408, then linger

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.discarding:
            return
        before = self._request_count
        super().data_received(data)
        if self._request_count != before and self._messages:
            # Headers completed. Whatever follows is this request's body, if it has one.
            self._cancel_header_timer()
            self.partial = False
            payload = self._messages[-1][1]
            if not payload.is_eof() and self.body is not payload:
                self._cancel_body_timer()
                self.body = payload
                self.body_timer = self._loop.call_later(self.read_timeout, self._body_late)
        if self.body is not None and self.body.is_eof():
            self._cancel_body_timer()
            self.body = None
        if data and self.body is None and self._request_count == before:
            self.partial = True
            self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        if self.header_timer is None and not self._force_close:
            self.header_timer = self._loop.call_later(self.read_timeout, self._headers_late)

    def _headers_late(self) -> None:
        self.header_timer = None
        if self.transport is None or self._force_close:
            return
        if self._request_in_progress or self._messages:  # a pipelined request: check again later
            self._arm_header_timer()
            return
        if not self.partial:  # nothing sent since the connection opened: close it quietly
            logger.debug("closing a connection that sent nothing for %.1fs", self.read_timeout)
            self.force_close()
            return
        request_id = uuid.uuid4().hex
        logger.debug(
            "closing a connection whose request headers took over %.1fs", self.read_timeout
        )
        access_logger.info("- - 408 %.1fms rid=%s", self.read_timeout * 1000, request_id)
        detail = f"Request headers not received within {round(self.read_timeout * 1000)} ms"
        self.transport.write(raw_response(408, "Request Timeout", detail, request_id))
        self._linger(self.transport)

    def _linger(self, transport: asyncio.Transport) -> None:
        """Close ``transport`` after an answer to a client that may still be sending.

        Closing at once would make the kernel answer the client's next bytes with a reset, which
        can destroy the answer before the client reads it (RFC 9112 §9.6): send FIN after the
        answer, drop whatever still arrives, and close when the client closes its side (asyncio
        closes on EOF) or after ``LINGER_S`` seconds, whichever is first.
        """
        if transport.can_write_eof():
            transport.write_eof()
        self.discarding = True
        self._loop.call_later(LINGER_S, transport.close)

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp's, except for a body whose encoding is broken (a truncated or corrupt
        gzip/deflate stream met while draining the rest of the body after the answer): the
        client's fault, already answered 400, logged at debug so a client cannot flood the log
        with ERROR tracebacks."""
        exc = kw.get("exc_info")
        if isinstance(exc, PayloadEncodingError) or isinstance(
            getattr(exc, "__cause__", None), PayloadEncodingError
        ):  # aiohttp wraps it in RequestPayloadError
            logger.debug("dropped a request body with a broken encoding: %s", type(exc).__name__)
            return
        super().log_exception(*args, **kw)

    def _body_late(self) -> None:
        self.body_timer = None
        body, self.body = self.body, None
        if body is not None and not body.is_eof():
            logger.debug("request body took over %.1fs; closing", self.read_timeout)
            self.body_timed_out = True
            body.set_exception(BodyReadTimeout(self.read_timeout))

    async def finish_response(
        self, request: Any, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        """aiohttp's, then, after the 408 of a body that came too slowly, a lingering close: the
        connection is taken from aiohttp (which would close it at once) and closed by ``_linger``.
        """
        answered = await super().finish_response(request, resp, start_time)
        if self.body_timed_out and self.transport is not None:
            transport, self.transport = self.transport, None
            self._linger(transport)  # type: ignore[arg-type]
        return answered

    def _cancel_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _cancel_body_timer(self) -> None:
        if self.body_timer is not None:
            self.body_timer.cancel()
            self.body_timer = None

    def _disarm(self) -> None:
        self._cancel_header_timer()
        self._cancel_body_timer()
        self.body = None

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The answer to a request that failed outside the app: JSON, never quoting the request."""
        if not isinstance(exc, BadHttpMessage):
            logger.error("error handling a request (%d)", status, exc_info=exc)
            status, detail = (504, "Timeout") if status == 504 else (500, "Internal server error")
        else:
            status, detail = parse_error(exc)
            logger.debug(
                "rejected a request it could not parse: %s (%d)", type(exc).__name__, status
            )
        if request.writer.output_size > 0:
            raise ConnectionError("the response was already started; cannot send an error")
        request_id = uuid.uuid4().hex
        if isinstance(exc, BadHttpMessage):  # no request reached the app, whose middleware logs
            access_logger.info("- - %d 0.0ms rid=%s", status, request_id)
        response = web.json_response(
            {"detail": detail},
            status=status,
            headers={"Server": SERVER_NAME, "X-Request-ID": request_id},
            dumps=lambda o: orjson.dumps(o).decode(),
        )
        response.force_close()
        return response


class GamifyServer(web.Server):
    """aiohttp's low-level server, making ``GamifyRequestHandler`` connections."""

    def __init__(self, *args: Any, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = read_timeout

    def __call__(self) -> RequestHandler:
        return GamifyRequestHandler(
            self, loop=self._loop, read_timeout=self.read_timeout, **self._kwargs
        )


class GamifyAppRunner(web.AppRunner):
    """``web.AppRunner`` serving the app through ``GamifyServer``."""

    def __init__(self, app: web.Application, *, read_timeout: float, **kwargs: Any) -> None:
        kwargs.setdefault("keepalive_timeout", KEEPALIVE_TIMEOUT)
        kwargs.setdefault("lingering_time", min(2.0, read_timeout))
        super().__init__(
            app,
            max_line_size=MAX_REQUEST_LINE,
            max_field_size=MAX_FIELD_SIZE,
            max_headers=MAX_HEADERS,
            **kwargs,
        )
        self.read_timeout = read_timeout

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        # Rebuilt around the same app handler and settings, with our connection class.
        return GamifyServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=asyncio.get_running_loop(),
            read_timeout=self.read_timeout,
            **made._kwargs,  # noqa: SLF001 - the app's handler_args and our limits, as aiohttp set them
        )


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` with Gamify's backlog (raises OSError if taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=BACKLOG)

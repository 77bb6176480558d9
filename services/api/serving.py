"""Serve an app until SIGTERM/SIGINT, then shut down gracefully within a bounded time.

A signal during start-up stops the start-up. On the signal: stop listening; idle keep-alive connections are closed (FIN, never a reset);
responses still being produced carry ``Connection: close``; in-flight requests get up to
``shutdown_timeout`` seconds to finish; then the cleanup contexts stop the workers (the
projector commits its batch). Whatever still hangs ``WORKER_GRACE`` seconds after that, the
process exits: a shutdown never takes longer than ``shutdown_timeout + WORKER_GRACE``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from services.api.server import GamifyAppRunner

logger = logging.getLogger(__name__)

WORKER_GRACE = 5.0  # seconds for the workers to stop after the last request finished


class _Stopping:
    """Set once the signal arrived; responses prepared from then on close their connection."""

    def __init__(self) -> None:
        self.now = False

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        if self.now:
            response.force_close()


def run_server(
    app: web.Application,
    *,
    sock: socket.socket,
    read_timeout: float,
    shutdown_timeout: float,
    print: Callable[[str], None] = print,  # noqa: A002 - the name web.run_app uses
    **server_kwargs: Any,
) -> int:
    """Serve ``app`` on the listening ``sock`` until SIGTERM or SIGINT; return the exit code (0).

    ``sock`` is bound by the caller (services.api.server.listen), so a taken port is known
    before anything starts. ``read_timeout`` (seconds) bounds reading headers and bodies
    (services.api.server.GamifyAppRunner); ``shutdown_timeout`` (seconds) is what in-flight
    requests get after the signal.
    """
    stopping = _Stopping()
    app.on_response_prepare.append(stopping.on_response_prepare)
    server_kwargs["read_timeout"] = read_timeout
    return asyncio.run(_serve(app, sock, shutdown_timeout, stopping, print, server_kwargs))


async def _serve(
    app: web.Application,
    sock: socket.socket,
    shutdown_timeout: float,
    stopping: _Stopping,
    print: Callable[[str], None],  # noqa: A002
    server_kwargs: dict[str, Any],
) -> int:
    loop = asyncio.get_running_loop()
    signalled = asyncio.Event()
    received: list[str] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda s=sig: (received.append(s.name), signalled.set()))
    runner = GamifyAppRunner(
        app, handle_signals=False, shutdown_timeout=shutdown_timeout, **server_kwargs
    )
    if not await _started(runner, signalled):  # a signal during start-up: stop starting
        _exit_after(WORKER_GRACE)
        await runner.cleanup()
        return 0
    try:
        site = web.SockSite(runner, sock)
        await site.start()
        print(f"======== Running on {site.name} ========\n(Press CTRL+C to quit)")
        await signalled.wait()
    except BaseException:
        await runner.cleanup()
        raise
    stopping.now = True
    logger.info(
        "stopping on %s: finishing in-flight requests (up to %.1fs)",
        received[0] if received else "signal",
        shutdown_timeout,
    )
    _exit_after(shutdown_timeout + WORKER_GRACE)
    await runner.cleanup()
    logger.info("stopped serving on %s", site.name)
    return 0


async def _started(runner: web.AppRunner, signalled: asyncio.Event) -> bool:
    """Start the app (its cleanup contexts) unless a signal comes first; errors propagate."""
    starting = asyncio.ensure_future(runner.setup())
    waiting = asyncio.ensure_future(signalled.wait())
    await asyncio.wait({starting, waiting}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if starting.done():
        starting.result()
        return True
    starting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await starting
    logger.info("stopped during start-up")
    return False


def _exit_after(seconds: float) -> None:
    """A watchdog thread: if the process is still here after ``seconds``, it exits (code 1).

    A daemon thread, not a task: a store call stuck in a worker thread keeps the interpreter
    from exiting (it joins its worker threads), whatever the event loop does.
    """

    def watch() -> None:
        if not done.wait(seconds):
            logger.error("shutdown took longer than %.1fs; exiting now", seconds)
            sys.stderr.flush()
            os._exit(1)

    done = threading.Event()  # never set: a normal exit simply ends the daemon thread
    threading.Thread(target=watch, name="gamify-shutdown-watchdog", daemon=True).start()

"""The quarantine's part of the ops endpoints: a monitor for the app, a check for /readyz."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import suppress

from aiohttp import web

from projections.participants.quarantine import QuarantineMonitor, QuarantineQueries
from services.api.keys import quarantine_key, queries_key

PROJECTION = "participants"


async def quarantine_ctx(app: web.Application) -> AsyncIterator[None]:
    """Count quarantined records every second (gauge and /readyz), for the life of the app."""
    quarantine = QuarantineQueries(app[queries_key].db)
    monitor = QuarantineMonitor(quarantine.open_count, PROJECTION)
    app[quarantine_key] = monitor
    await asyncio.to_thread(monitor.refresh)
    stop = asyncio.Event()
    task = asyncio.create_task(monitor.run(stop), name="gamify-quarantine-monitor")
    yield
    stop.set()
    with suppress(asyncio.CancelledError):
        await task


def quarantine_check(app: web.Application) -> str:
    """``ok``, or how many records wait for an operator (``gamify quarantine``)."""
    monitor = app[quarantine_key]
    if monitor.error is not None:
        return f"unknown: {monitor.error}"
    if monitor.open:
        return (
            f"{monitor.open} record(s) quarantined: see `gamify quarantine list`, "
            "then retry or acknowledge them"
        )
    return "ok"

"""The quarantine's part of the ops endpoints: a monitor for the app, a check for /readyz."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import suppress

from aiohttp import web

from projections.participants.quarantine import QuarantineMonitor, QuarantineQueries
from services.api.keys import quarantine_key, queries_key, settings_key

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


async def quarantine_readiness(app: web.Application) -> dict[str, object]:
    """The /readyz part: ``quarantined_records`` (information) always; with
    GAMIFY_READY_FAIL_ON_QUARANTINE also ``quarantine``, which fails readiness while records wait.

    Not failing by default is deliberate: the projector goes on past a quarantined record, so
    writes and reads still work; taking every API process out of a load balancer for one record
    would turn a contained fault into an outage. Alert on the gauge
    ``gamify_projector_quarantined_records`` (or the count here) instead.
    """
    if quarantine_key not in app:
        return {}
    monitor = app[quarantine_key]
    found: dict[str, object] = {"quarantined_records": monitor.open}
    if app[settings_key].ready_fail_on_quarantine or monitor.error is not None:
        found["quarantine"] = quarantine_check(app)
    return found

"""What /readyz checks: each check is fast and names what stops writes (store, log, workers).

A check is ``async def check(app) -> dict[str, object]``: entries whose value is ``"ok"`` pass,
any other string is the reason for "not ready", and non-string values (``projector_lag``) are
information only. Checks run concurrently and every one answers within ``CHECK_TIMEOUT``, so
/readyz answers in about half a second even while the store or the log hangs. To add a check
append it to ``CHECKS``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from services.api.keys import (
    lag_key,
    queries_key,
    settings_key,
    store_ping_key,
    workers_key,
    write_health_key,
)
from services.api.quarantine_ops import quarantine_readiness

CHECK_TIMEOUT = 0.5  # seconds a check may take (the store ping)
STALE_REPORT = 5.0  # seconds after which the lag measurement is considered missing

Check = Callable[[web.Application], Awaitable[dict[str, object]]]


async def store_check(app: web.Application) -> dict[str, object]:
    """The read-model store answers a trivial query within CHECK_TIMEOUT."""
    try:
        await app[store_ping_key](app[queries_key].ping, CHECK_TIMEOUT)
    except TimeoutError:
        return {"store": f"unreachable: no answer within {CHECK_TIMEOUT:g}s"}
    except Exception as exc:
        return {"store": f"unreachable: {type(exc).__name__}: {str(exc)[:200]}"}
    return {"store": "ok"}


async def log_check(app: web.Application) -> dict[str, object]:
    """The log answered the last lag measurement."""
    report = app[lag_key].report
    age = time.time() - report.measured_at
    if report.log_error:
        return {"log": f"unreachable: {report.log_error}"}
    if age > STALE_REPORT:
        return {"log": f"no lag measurement for {age:.0f}s"}
    return {"log": "ok"}


async def projector_check(app: web.Application) -> dict[str, object]:
    """The projector keeps up: within the lag limit, not stalled on a backlog, not failing."""
    settings = app[settings_key]
    report = app[lag_key].report
    found: dict[str, object] = {"projector_lag": report.total}
    worker = app[workers_key].get("projector")
    problem = worker.problem() if worker is not None else None
    stalled = report.stalled_for()
    if problem is None and report.total > settings.ready_max_lag:
        problem = f"behind by {report.total} records (limit {settings.ready_max_lag})"
    if problem is None and stalled >= settings.ready_stall:
        problem = f"not progressing: {report.total} records to project, none for {stalled:.1f}s"
    found["projector"] = problem or "ok"
    return found


async def writes_check(app: web.Application) -> dict[str, object]:
    """The last write did not fail on an unusable store or log (e.g. a full disk)."""
    return {"writes": app[write_health_key].problem() or "ok"}


async def inbound_check(app: web.Application) -> dict[str, object]:
    worker = app[workers_key].get("inbound")
    if worker is None:
        return {}
    return {"inbound": worker.problem() or "ok"}


CHECKS: list[Check] = [
    store_check,
    log_check,
    projector_check,
    writes_check,
    inbound_check,
    quarantine_readiness,
]


async def evaluate(app: web.Application) -> tuple[bool, dict[str, object]]:
    """Run every check concurrently; ready when every string entry is "ok"."""
    found: dict[str, object] = {}
    for part in await asyncio.gather(*(check(app) for check in CHECKS)):
        found.update(part)
    ready = all(v == "ok" for v in found.values() if isinstance(v, str))
    return ready, found

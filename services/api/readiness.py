"""What /readyz checks: each check is fast and names what stops writes (store, log, workers).

A check is ``async def check(app) -> dict[str, object]``: entries whose value is ``"ok"`` pass,
any other string is the reason for "not ready", and non-string values (``projector_lag``) are
information only. Checks run concurrently and every one answers within ``CHECK_TIMEOUT``, so
/readyz answers in about half a second even while the store or the log hangs. To add a check
(e.g. quarantined records), append it to ``CHECKS``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from projections.lag import SingleFlight
from services.api.keys import lag_key, queries_key, settings_key, workers_key

CHECK_TIMEOUT = 0.5  # seconds a check may take (the store ping)
FAILURE_WINDOW = 5.0  # seconds a worker's failure keeps the process not ready
STALE_REPORT = 5.0  # seconds after which the lag measurement is considered missing

Check = Callable[[web.Application], Awaitable[dict[str, object]]]


@dataclass(slots=True)
class WorkerStatus:
    """A background worker's health as /readyz sees it (kept by the worker's runner).

    ``joined`` tells whether the worker holds its share of the log (a consumer group gave it
    its partitions); ``failed_at``/``last_error`` the last failure (the worker restarts).
    """

    name: str
    joined: Callable[[], bool] = lambda: True
    running: bool = False
    last_error: str | None = None
    failed_at: float = 0.0

    def failed(self, error: BaseException) -> None:
        self.last_error = f"{type(error).__name__}: {error}"[:300]
        self.failed_at = time.monotonic()

    def problem(self) -> str | None:
        """Why this worker stops writes right now, or None."""
        if self.last_error and time.monotonic() - self.failed_at < FAILURE_WINDOW:
            return f"failing: {self.last_error}"
        if not self.running:
            return "not running"
        if not self.joined():
            return "waiting for its partitions (joining the consumer group)"
        return None


_store_ping = SingleFlight[None]()


async def store_check(app: web.Application) -> dict[str, object]:
    """The read-model store answers a trivial query within CHECK_TIMEOUT."""
    try:
        await _store_ping(app[queries_key].ping, CHECK_TIMEOUT)
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


async def inbound_check(app: web.Application) -> dict[str, object]:
    worker = app[workers_key].get("inbound")
    if worker is None:
        return {}
    return {"inbound": worker.problem() or "ok"}


CHECKS: list[Check] = [store_check, log_check, projector_check, inbound_check]


async def evaluate(app: web.Application) -> tuple[bool, dict[str, object]]:
    """Run every check concurrently; ready when every string entry is "ok"."""
    found: dict[str, object] = {}
    for part in await asyncio.gather(*(check(app) for check in CHECKS)):
        found.update(part)
    ready = all(v == "ok" for v in found.values() if isinstance(v, str))
    return ready, found

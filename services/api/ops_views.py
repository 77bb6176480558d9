"""Operations endpoints: liveness, readiness (store, log, projector lag, quarantine), metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from services import metrics
from services.api.keys import lag_key, queries_key, settings_key
from services.api.quarantine_ops import quarantine_check
from services.api.requests import dumps

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 when the store answers, the log was reachable lately and the projector keeps up."""
    settings = request.app[settings_key]
    checks: dict[str, object] = {}
    try:
        await asyncio.to_thread(request.app[queries_key].ping)
        checks["store"] = "ok"
    except Exception as exc:
        checks["store"] = f"unreachable: {type(exc).__name__}"
    report = request.app[lag_key].report
    stale = time.time() - report.measured_at > max(10.0, 5 * request.app[lag_key].interval)
    if report.error or stale:
        checks["log"] = f"unreachable: {report.error or 'no recent measurement'}"
    else:
        checks["log"] = "ok"
        behind = report.total
        checks["projector_lag"] = behind
        if behind > settings.ready_max_lag:
            checks["projector"] = f"behind by {behind} records (limit {settings.ready_max_lag})"
        else:
            checks["projector"] = "ok"
    checks["quarantine"] = quarantine_check(request.app)
    ready = all(v == "ok" for k, v in checks.items() if k != "projector_lag")
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
        dumps=dumps,
    )


async def prometheus(request: web.Request) -> web.Response:
    body, content_type = metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": content_type})


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    started = time.perf_counter()
    response = await handler(request)
    metrics.HTTP_LATENCY.labels(request.method, name).observe(time.perf_counter() - started)
    metrics.HTTP_REQUESTS.labels(request.method, name, str(response.status)).inc()
    return response

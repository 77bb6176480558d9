"""Operations endpoints: liveness, readiness (services.api.readiness) and Prometheus metrics."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from services import metrics
from services.api import readiness
from services.api.requests import dumps

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """200 when nothing stops writes; 503 naming what does (see services.api.readiness)."""
    ready, checks = await readiness.evaluate(request.app)
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

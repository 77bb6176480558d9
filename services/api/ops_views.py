"""Operations endpoints: liveness, readiness (services.api.readiness) and Prometheus metrics."""

from __future__ import annotations

from aiohttp import web

from services import metrics
from services.api import readiness
from services.api.requests import dumps


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

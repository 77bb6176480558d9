"""Authentication: every endpoint but the health checks needs a key; the tenant comes from it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from services.api.auth import Principal
from services.api.errors import error
from services.api.keys import key_ring_key

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
principal_key = web.RequestKey("principal_key", Principal)
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/api/v1/gamify/openapi.json"})
PUBLIC_PREFIX = "/api/v1/gamify/docs"  # the documentation page and its assets


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if (
        request.path in PUBLIC_PATHS
        or request.path.startswith(PUBLIC_PREFIX)
        or request.match_info.http_exception is not None
    ):
        # No route matches (404) or not with this method (405): the answer says only what the
        # public OpenAPI document says, so it comes before authentication.
        return await handler(request)
    presented = request.headers.get("X-API-Key")
    if presented is None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        presented = token.strip() if scheme.lower() == "bearer" else None
    if not presented:
        return error(
            401, "Missing API key: send it in the X-API-Key header", {"WWW-Authenticate": "ApiKey"}
        )
    principal = request.app[key_ring_key].authenticate(presented)
    if principal is None:
        return error(401, "Invalid API key", {"WWW-Authenticate": "ApiKey"})
    request[principal_key] = principal
    return await handler(request)


def principal(request: web.Request) -> Principal:
    """The authenticated principal of a request that passed the middleware."""
    found: Principal = request[principal_key]
    return found

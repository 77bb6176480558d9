"""Authentication and rate limits: every endpoint but the public ones needs a key; it names the tenant.

One middleware does both, in this order: a request without a valid key is answered 401 and counts
against nothing; an authenticated one is counted against its limits (services.api.rate_limits).

A key is looked for among the configured keys (GAMIFY_API_KEYS or the development key) first,
then among the keys issued through /admin/api-keys (services.api.issued_keys).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from services import metrics
from services.api.access import stamp
from services.api.auth import Principal
from services.api.errors import error
from services.api.keys import issued_keys_key, key_ring_key, rate_limiter_key
from services.api.rate_limits import Decision, RateLimiter

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
principal_key = web.RequestKey("principal_key", Principal)
rate_decision_key = web.RequestKey("rate_decision_key", Decision)
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/api/v1/gamify/openapi.json"})
PUBLIC_PREFIX = "/api/v1/gamify/docs"  # the documentation page and its assets


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate (401 without a valid key), then count the request against its rate limits."""
    path = request.path
    if (
        path in PUBLIC_PATHS
        or path.startswith(PUBLIC_PREFIX)
        or request.match_info.http_exception is not None
    ):
        # No route matches (404) or not with this method (405): the answer says only what the
        # public OpenAPI document says, so it comes before authentication.
        return await handler(request)
    headers = request.headers
    presented = headers.get("X-API-Key")
    if presented is None:
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        presented = token.strip() if scheme.lower() == "bearer" else None
    if not presented:
        return error(
            401, "Missing API key: send it in the X-API-Key header", {"WWW-Authenticate": "ApiKey"}
        )
    app = request.app
    principal = app[key_ring_key].authenticate(presented)
    if principal is None:
        issued = app.get(issued_keys_key)
        if issued is not None:
            principal = await issued.authenticate(presented)
    if principal is None:
        return error(401, "Invalid API key", {"WWW-Authenticate": "ApiKey"})
    request[principal_key] = principal
    limiter = app.get(rate_limiter_key)
    if limiter is None or not limiter.counts(principal):
        return await handler(request)
    return await _rate_limited(request, principal, limiter, handler)


def principal(request: web.Request) -> Principal:
    """The authenticated principal of a request that passed the middleware."""
    found: Principal = request[principal_key]
    return found


async def _rate_limited(
    request: web.Request, who: Principal, limiter: RateLimiter, handler: Handler
) -> web.StreamResponse:
    """Count an authenticated request against its limits; over a limit, 429 + Retry-After."""
    decision = await limiter.check(who, request.method, request.path)
    if decision is None:
        return await handler(request)
    request[rate_decision_key] = decision
    if not decision.allowed:
        metrics.RATE_LIMITED.labels(decision.name).inc()
        return error(
            429,
            f"Rate limit exceeded ({decision.name}: {decision.limit} requests); "
            f"retry after {decision.retry_after} s",
        )
    return await handler(request)


async def stamp_response(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: ``Server`` and ``X-Request-ID`` on every answer
    (services.api.access), and the X-RateLimit-* headers (and Retry-After) of a counted request."""
    stamp(request, response)
    decision = request.get(rate_decision_key)
    if decision is not None:
        response.headers.update(decision.headers())

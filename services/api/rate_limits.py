"""Rate limits per key, per tenant and for event-ingestion bursts, counted by the `limits` library.

Which limits a request counts against (gamify-api.md §1.6; the README's "Rate limits"):

* every authenticated request: its key's limit (``GAMIFY_RATE_LIMIT_PER_KEY``, or the key's own
  ``rate_limit`` per 60 s when it was issued with one);
* every authenticated request outside ``/admin``: its tenant's limit, shared by all the tenant's
  keys (``GAMIFY_RATE_LIMIT_PER_TENANT``);
* ``POST /events`` and ``POST /events/batch``: a per-key burst limit (``..._INGEST_BURST``).

Health, readiness, metrics, the documentation and answers given before authentication (401, 404,
405) count against nothing. Counters use the sliding-window-counter strategy (constant memory per
counter), in process memory or, with ``GAMIFY_REDIS_URL``, in Redis shared by every process.
When Redis cannot be reached the request is let through (fail open): a warning is logged at most
once per ``WARN_EVERY`` seconds and ``gamify_rate_limit_errors_total`` counts each such request.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError

from services.api.auth import Principal
from services.rate_limit_config import Rate, RateLimitSettings

logger = logging.getLogger(__name__)

BASE = "/api/v1/gamify"
INGEST_PATHS = frozenset({f"{BASE}/events", f"{BASE}/events/batch"})
ADMIN_PREFIX = f"{BASE}/admin/"
KEY_RATE_WINDOW = 60  # seconds of an issued key's own ``rate_limit``
WARN_EVERY = 30.0
REDIS_TIMEOUT = 0.5  # seconds to connect or answer before a request fails open


@dataclass(frozen=True, slots=True)
class Applied:
    """One limit a request counts against: its name (key, tenant, burst), rate and counter."""

    name: str
    rate: Rate
    counter: str


@dataclass(frozen=True, slots=True)
class Decision:
    """What the response says: the limit, what is left of it, when it resets (Unix seconds)."""

    name: str
    limit: int
    remaining: int
    reset: int
    allowed: bool
    retry_after: int = 0

    def headers(self) -> dict[str, str]:
        found = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }
        if not self.allowed:
            found["Retry-After"] = str(self.retry_after)
        return found


def applicable(
    settings: RateLimitSettings, principal: Principal, method: str, path: str
) -> list[Applied]:
    """The limits an authenticated request counts against, the narrowest window first."""
    found: list[Applied] = []
    if settings.ingest_burst and method == "POST" and path in INGEST_PATHS:
        found.append(Applied("burst", settings.ingest_burst, f"burst:{principal.key_id}"))
    own = Rate(principal.rate_limit, KEY_RATE_WINDOW) if principal.rate_limit else None
    if own or settings.per_key:
        found.append(Applied("key", own or settings.per_key, f"key:{principal.key_id}"))  # type: ignore[arg-type]
    if settings.per_tenant and not path.startswith(ADMIN_PREFIX):
        found.append(Applied("tenant", settings.per_tenant, f"tenant:{principal.tenant}"))
    return found


def storage_for(settings: RateLimitSettings) -> Storage:
    """Memory, or Redis through redis-py's asyncio client when ``redis_url`` is set."""
    if settings.redis_url is None:
        return MemoryStorage()
    return RedisStorage(
        "async+" + settings.redis_url,
        implementation="redispy",
        key_prefix=settings.redis_prefix,
        wrap_exceptions=True,
        socket_connect_timeout=REDIS_TIMEOUT,
        socket_timeout=REDIS_TIMEOUT,
    )


class RateLimiter:
    """Counts requests against their limits; ``check`` answers None when nothing could be counted."""

    def __init__(
        self,
        settings: RateLimitSettings,
        storage: Storage,
        *,
        clock: Callable[[], float] = time.time,
        on_error: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.strategy = SlidingWindowCounterRateLimiter(storage)
        self.clock = clock
        self.on_error = on_error
        self._warned_at = -math.inf

    def counts(self, principal: Principal) -> bool:
        """Whether any limit may apply to ``principal``'s requests (False: ``check`` answers None
        for every request of it: every setting is off and the key has no limit of its own)."""
        s = self.settings
        return bool(s.per_key or s.per_tenant or s.ingest_burst or principal.rate_limit)

    async def check(self, principal: Principal, method: str, path: str) -> Decision | None:
        """Count the request; the refused limit, else the one with the least left."""
        limits = applicable(self.settings, principal, method, path)
        if not limits:
            return None
        try:
            return await self._count(limits)
        except StorageError as exc:
            self._fail_open(exc)
            return None

    async def _count(self, limits: list[Applied]) -> Decision:
        decisions = []
        for applied in limits:
            item = _item(applied.rate)
            allowed = await self.strategy.hit(item, applied.counter)
            stats = await self.strategy.get_window_stats(item, applied.counter)
            decision = self._decision(applied, allowed, stats.remaining, stats.reset_time)
            if not allowed:
                return decision
            decisions.append(decision)
        return min(decisions, key=lambda d: (d.remaining, -d.reset))

    def _decision(self, applied: Applied, allowed: bool, remaining: int, reset: float) -> Decision:
        wait = max(1, math.ceil(reset - self.clock()))
        return Decision(
            applied.name,
            applied.rate.amount,
            max(0, remaining),
            math.ceil(reset),
            allowed,
            0 if allowed else wait,
        )

    def _fail_open(self, exc: Exception) -> None:
        self.on_error()
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            logger.warning(
                "Rate-limit storage unreachable (%s); requests are let through uncounted", exc
            )


def _item(rate: Rate) -> RateLimitItem:
    return RateLimitItemPerSecond(rate.amount, rate.seconds, namespace="gamify")

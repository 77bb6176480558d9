"""Rate-limit settings: the GAMIFY_RATE_LIMIT_* and GAMIFY_REDIS_URL variables, checked at start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class RateLimitConfigError(ValueError):
    """A rate-limit variable holds a value Gamify cannot use."""


@dataclass(frozen=True, slots=True)
class Rate:
    """``amount`` requests per ``seconds`` seconds."""

    amount: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.amount}/{self.seconds}"


@dataclass(frozen=True, slots=True)
class RateLimitSettings:
    """Which limits apply (None: that limit is off) and where their counters live.

    Defaults are the reference's (gamify-api.md §1.6): 1,000 requests per 60 s per key, 200 per
    60 s per tenant on the participant endpoints, a burst of 100 per second per key on event
    ingestion. ``redis_url`` None keeps the counters in the process's memory.
    """

    per_key: Rate | None = Rate(1000, 60)
    per_tenant: Rate | None = Rate(200, 60)
    ingest_burst: Rate | None = Rate(100, 1)
    redis_url: str | None = None
    redis_prefix: str = "gamify-ratelimit"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> RateLimitSettings:
        defaults = cls()
        url = env.get("GAMIFY_REDIS_URL")
        if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
            raise RateLimitConfigError(
                "GAMIFY_REDIS_URL: expected redis://host:port/db, rediss://... or unix:///path"
            )
        return cls(
            per_key=parse_rate(env, "GAMIFY_RATE_LIMIT_PER_KEY", defaults.per_key),
            per_tenant=parse_rate(env, "GAMIFY_RATE_LIMIT_PER_TENANT", defaults.per_tenant),
            ingest_burst=parse_rate(env, "GAMIFY_RATE_LIMIT_INGEST_BURST", defaults.ingest_burst),
            redis_url=url,
            redis_prefix=env.get("GAMIFY_REDIS_KEY_PREFIX", defaults.redis_prefix),
        )


def parse_rate(env: Mapping[str, str], name: str, default: Rate | None) -> Rate | None:
    """``N/S`` (N requests per S seconds, both positive integers) or ``off``."""
    raw = env.get(name)
    if raw is None:
        return default
    if raw.strip().lower() == "off":
        return None
    amount, slash, seconds = raw.partition("/")
    try:
        rate = Rate(int(amount), int(seconds)) if slash else None
    except ValueError:
        rate = None
    if rate is None or rate.amount < 1 or rate.seconds < 1:
        raise RateLimitConfigError(
            f"{name}={raw!r}: expected REQUESTS/SECONDS (e.g. 1000/60) or off"
        )
    return rate

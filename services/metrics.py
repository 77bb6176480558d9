"""Prometheus metrics of the API and the inbound processor, and the /metrics exposition."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

HTTP_REQUESTS = Counter(
    "gamify_http_requests_total", "HTTP requests by route and status", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram(
    "gamify_http_request_duration_seconds",
    "HTTP request latency by route",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
INBOUND_MESSAGES = Counter(
    "gamify_inbound_messages_total", "Inbound messages applied, by command", ["command", "outcome"]
)
DEAD_LETTERS = Counter(
    "gamify_dead_letters_total",
    "Inbound messages sent to the dead-letter topic, by reason",
    ["kind"],
)

RATE_LIMITED = Counter(
    "gamify_rate_limited_total",
    "Requests refused with 429, by limit (key, tenant, burst)",
    ["limit"],
)
RATE_LIMIT_ERRORS = Counter(
    "gamify_rate_limit_errors_total",
    "Requests let through uncounted because the rate-limit storage (Redis) failed",
)


# The labelled children of the two HTTP metrics, per (method, route, status): ``labels()`` takes
# a lock and validates its arguments on every call; a request only needs the child.
_http_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered request of ``route`` (a canonical path) and its latency in seconds."""
    children = _http_children.get((method, route, status))
    if children is None:
        children = _http_children[(method, route, status)] = (
            HTTP_LATENCY.labels(method, route),
            HTTP_REQUESTS.labels(method, route, str(status)),
        )
    children[0].observe(seconds)
    children[1].inc()


def exposition() -> tuple[bytes, str]:
    """The body and content type of a /metrics response."""
    return generate_latest(), CONTENT_TYPE_LATEST

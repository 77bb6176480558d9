"""Sign a webhook delivery: the headers a receiver verifies (HMAC-SHA256, stdlib hmac).

``X-Gamify-Signature: sha256=<hex>`` is HMAC-SHA256 with the subscription's secret (its UTF-8
bytes) over ``<X-Gamify-Timestamp>`` + ``.`` + the raw body, so the timestamp is covered and a
receiver can refuse old deliveries. ``X-Bricqs-Signature`` is the Bricqs-compatible signature:
the same HMAC over the raw body alone (reference/gamify-api.md §12).
"""

from __future__ import annotations

import hashlib
import hmac

USER_AGENT = "Gamify-Webhooks/1"


def signature(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """``sha256=<hex>`` of HMAC-SHA256(secret, ``<timestamp>.<body>``, or the body alone)."""
    signed = body if timestamp is None else f"{timestamp}.".encode() + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, timestamp: str, header: str) -> bool:
    """What a receiver does with ``X-Gamify-Signature``: constant-time comparison."""
    if not timestamp.isdigit():
        return False
    return hmac.compare_digest(signature(secret, body, int(timestamp)), header)


def delivery_headers(
    *, secret: str, body: bytes, timestamp: int, event_type: str, delivery_id: str, tenant: str
) -> dict[str, str]:
    """Every header of one delivery attempt (``timestamp``: Unix seconds of the attempt)."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Gamify-Signature": signature(secret, body, timestamp),
        "X-Gamify-Timestamp": str(timestamp),
        "X-Gamify-Event": event_type,
        "X-Gamify-Delivery": delivery_id,
        "X-Bricqs-Signature": signature(secret, body),
        "X-Bricqs-Event": event_type,
        "X-Bricqs-Delivery": delivery_id,
        "X-Bricqs-Tenant": tenant,
    }

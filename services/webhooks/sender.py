"""The webhook sender: claims due deliveries from the outbox and POSTs them, with retries.

Each subscription gets at most ``concurrency`` requests in flight and is claimed separately, so
a slow or dead receiver holds up only its own deliveries, never projection or other receivers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from contextlib import suppress

import aiohttp

from projections import metrics
from projections.webhooks.outbox import (
    CANCELLED,
    DELIVERED,
    FAILED,
    PENDING,
    Delivery,
    Outbox,
)
from services.config import WebhookSettings
from services.webhooks.addresses import RefusedAddress, check_url, resolver
from services.webhooks.signing import delivery_headers

logger = logging.getLogger(__name__)

LEASE_MARGIN = 30.0  # seconds after the request timeout before a claimed delivery is due again
GAUGE_EVERY = 5.0


def retry_delay(attempts: int, settings: WebhookSettings) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt: exponential backoff."""
    return float(settings.backoff * settings.backoff_factor ** (attempts - 1))


def verdict(
    attempts: int, code: int | None, now: float, settings: WebhookSettings
) -> tuple[str, float]:
    """(status, next attempt) after an attempt answered ``code`` (None: no answer)."""
    if code is not None and 200 <= code < 300:
        return DELIVERED, now
    if attempts >= settings.max_attempts:
        return FAILED, now
    return PENDING, now + retry_delay(attempts, settings)


class Sender:
    """Sends due deliveries until stopped; ``clock`` gives Unix seconds."""

    def __init__(
        self, outbox: Outbox, settings: WebhookSettings, clock: Callable[[], float] = time.time
    ) -> None:
        self.outbox, self.settings, self.clock = outbox, settings, clock
        self.in_flight: Counter[str] = Counter()
        self.tasks: set[asyncio.Task[None]] = set()
        self._gauged = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        connector = aiohttp.TCPConnector(
            resolver=resolver(allow_private=self.settings.allow_private), limit=100
        )
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout)
        async with aiohttp.ClientSession(
            connector=connector, timeout=timeout, trust_env=False
        ) as session:
            try:
                while not stop.is_set():
                    await self.tick(session)
                    with suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), self.settings.poll_interval)
            finally:
                await self._drain()

    async def tick(self, session: aiohttp.ClientSession) -> None:
        """Start an attempt for every due delivery whose subscription has a free slot."""
        now = self.clock()
        for webhook_id in await asyncio.to_thread(self.outbox.due_webhooks, now):
            free = self.settings.concurrency - self.in_flight[webhook_id]
            if free <= 0:
                continue
            lease = now + self.settings.timeout + LEASE_MARGIN
            for delivery in await asyncio.to_thread(
                self.outbox.claim, webhook_id, now, free, lease
            ):
                self.in_flight[webhook_id] += 1
                task = asyncio.create_task(self.attempt(session, delivery))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        if now - self._gauged >= GAUGE_EVERY:
            self._gauged = now
            metrics.WEBHOOK_PENDING.set(await asyncio.to_thread(self.outbox.pending))

    async def attempt(self, session: aiohttp.ClientSession, delivery: Delivery) -> None:
        """One POST of ``delivery`` and its recorded result; never raises (but cancellation)."""
        try:
            sub = await asyncio.to_thread(
                self.outbox.subscription, delivery.tenant, delivery.webhook_id
            )
            if sub is None or not sub.is_active:
                status, code, error, when = CANCELLED, None, "subscription deleted", self.clock()
            else:
                code, error = await self._post(session, sub.url, sub.secret, delivery)
                status, when = verdict(delivery.attempts, code, self.clock(), self.settings)
            await asyncio.to_thread(
                self.outbox.finish, delivery, status, code, error, when, self.clock()
            )
            metrics.WEBHOOK_DELIVERIES.labels(status if status != PENDING else "retry").inc()
        except Exception:
            logger.exception(
                "webhook delivery %s: recording the attempt failed", delivery.delivery_id
            )
        finally:
            self.in_flight[delivery.webhook_id] -= 1

    async def _post(
        self, session: aiohttp.ClientSession, url: str, secret: str, delivery: Delivery
    ) -> tuple[int | None, str | None]:
        body = delivery.body.encode()
        headers = delivery_headers(
            secret=secret,
            body=body,
            timestamp=int(self.clock()),
            event_type=delivery.event_type,
            delivery_id=delivery.delivery_id,
            tenant=delivery.tenant,
        )
        try:
            check_url(url, allow_private=self.settings.allow_private)
            async with session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as reply:
                await reply.content.read(64 * 1024)  # a bounded look; the answer is the status
                return reply.status, None if reply.status < 300 else f"HTTP {reply.status}"
        except RefusedAddress as exc:
            return None, f"refused: {exc}"
        except TimeoutError:
            return None, f"timeout after {self.settings.timeout:g}s"
        except aiohttp.ClientError as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, RefusedAddress) else exc
            return None, f"{type(cause).__name__}: {cause}"[:500]

    async def _drain(self) -> None:
        """Let attempts in flight finish (bounded by the timeout); the rest are re-sent later."""
        if self.tasks:
            _, pending = await asyncio.wait(set(self.tasks), timeout=self.settings.timeout + 1)
            for task in pending:
                task.cancel()
            with suppress(asyncio.CancelledError):
                await asyncio.gather(*pending, return_exceptions=True)

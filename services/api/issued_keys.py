"""Authentication by keys issued through POST /admin/api-keys (the api_keys read model).

Each request presenting a key that is not configured (GAMIFY_API_KEYS, the development key)
looks its digest up in the read model: one primary-key read. No answer is cached between
requests, so a revoke is refused from the next request on in every API process: the DELETE
answers after its commit is projected, and any process's next lookup reads the revoked row. (A
cache would have to be validated against the store on each request in a process that does not
project, which is the same one read.)

``last_used_at`` is kept outside the log (table ``api_key_usage``): after a successful lookup, a
best-effort upsert in the background sets it, at most once per ``TOUCH_EVERY`` seconds per key
and process, and skips rows touched within that interval by any process. A failed write is logged
at DEBUG and forgotten. A replay neither rebuilds nor resets it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from projections.api_keys.queries import ApiKeyQueries, ApiKeyRow
from services.api.auth import Principal
from services.keys.domain import key_digest

logger = logging.getLogger(__name__)

TOUCH_EVERY = 60.0  # seconds
MAX_TRACKED = 100_000  # keys whose last touch a process remembers before it forgets them all


class IssuedKeys:
    """The principal of an issued, unrevoked key, or None."""

    def __init__(
        self, queries: ApiKeyQueries, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.queries = queries
        self.clock = clock
        self._touched: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def authenticate(self, presented: str) -> Principal | None:
        found = await asyncio.to_thread(self.queries.by_hash, key_digest(presented))
        if found is None or not found.is_active:
            return None
        self._touch(found)
        return Principal(found.tenant, found.scope == "admin", found.id, found.rate_limit)

    def _touch(self, row: ApiKeyRow) -> None:
        now = time.monotonic()
        if now - self._touched.get(row.key_hash, -TOUCH_EVERY) < TOUCH_EVERY:
            return
        if len(self._touched) >= MAX_TRACKED:
            self._touched.clear()
        self._touched[row.key_hash] = now
        task = asyncio.create_task(self._write_touch(row.key_hash))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write_touch(self, key_hash: str) -> None:
        at = self.clock()
        before = at - timedelta(seconds=TOUCH_EVERY)
        try:
            await asyncio.to_thread(self.queries.touch, key_hash, _iso(at), _iso(before))
        except Exception as exc:  # best effort: the key's use is not worth a failed request
            logger.debug("last_used_at of an API key not written: %s", exc)

    async def close(self) -> None:
        """Wait for the pending last-use writes (at shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

"""The scheduler role: time-driven decisions appended as ordinary commits (point expiry).

Every ``interval`` seconds it reads the participants whose next expiring credit is due
(``point_expiry`` read model) and, for each due lot, runs ``ExpirePoints`` through the normal
command path (decide on the participant's current state, append with ``expected_version``,
wait for the projection) under the idempotency key ``expire:<lot id>``. So any number of
schedulers may run at once, and a retry after a crash is harmless: the key, the version
check and the decision (which re-reads that the lot is still open and due) each make an
expiry apply once. Docs: docs/points-expiry.md.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from projections.participants.expiry_queries import ExpiryQueries
from schemas.sections import due_lots
from services.participants.commands import ExpirePoints
from services.participants.handlers import Context, Deps, execute, iso

logger = logging.getLogger(__name__)

SOURCE = "scheduler"


def expiry_key(lot_id: str) -> str:
    """The idempotency key of a lot's expiry: the same in every scheduler, on every retry."""
    return f"expire:{lot_id}"


@dataclass(slots=True)
class TickResult:
    """What one pass did: lots expired by this pass, and lots it could not expire (logged)."""

    expired: int = 0
    failed: int = 0


class ExpiryScheduler:
    """Expire due credits; ``clock`` is injectable (a pinned clock in tests).

    Args:
        deps: the command path's dependencies (its clock is replaced by ``clock``).
        queries: the ``point_expiry`` read model.
        clock: the time every decision is made at (UTC).
        interval: seconds between passes.
        batch: participants read per query; a pass repeats the query while it fills a batch.
    """

    def __init__(
        self,
        deps: Deps,
        queries: ExpiryQueries,
        *,
        clock: Callable[[], datetime],
        interval: float = 10.0,
        batch: int = 500,
    ) -> None:
        self.deps = dataclasses.replace(deps, clock=clock)
        self.queries, self.clock = queries, clock
        self.interval, self.batch = interval, batch

    async def tick(self) -> TickResult:
        """One pass: expire every lot due now. Returns what it did."""
        result = TickResult()
        at = iso(self.clock())
        seen: set[tuple[str, str]] = set()
        while True:  # an expired participant leaves the due rows; one that failed stays (seen)
            due = await asyncio.to_thread(self.queries.due, at, self.batch)
            fresh = [d for d in due if d not in seen]
            for tenant, pid in fresh:
                seen.add((tenant, pid))
                await self._participant(tenant, pid, at, result)
            if not fresh or len(due) < self.batch:
                return result

    async def _participant(self, tenant: str, pid: str, at: str, result: TickResult) -> None:
        state = await self.deps.reader.get_state(tenant, pid)
        if state is None:
            return
        for lot in due_lots(state.sections, at):
            ctx = Context(tenant, source=SOURCE, idempotency_key=expiry_key(lot["id"]))
            try:
                done = await execute(self.deps, ctx, ExpirePoints(pid, lot["id"]))
            except Exception:  # one participant never stops the pass; the next pass retries
                result.failed += 1
                logger.exception("expiring lot %s of %s/%s failed", lot["id"], tenant, pid)
                continue
            if done.events and not done.replayed:
                result.expired += 1

    async def run(self, stop: asyncio.Event) -> None:
        """Pass, wait ``interval`` (or until ``stop``), repeat."""
        while not stop.is_set():
            found = await self.tick()
            if found.expired or found.failed:
                logger.info("expiry pass: %d expired, %d failed", found.expired, found.failed)
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

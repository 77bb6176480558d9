"""The evaluate use case: give a tier or badge to every participant who qualifies for it now."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from services.participants.commands import EvaluateParticipant
from services.participants.domain import DomainError
from services.participants.features.evaluation import evaluation_key, qualifies
from services.participants.handlers import (
    ConcurrencyConflict,
    Context,
    Deps,
    IdempotencyKeyReused,
    NotYetProjected,
    execute,
)

logger = logging.getLogger(__name__)

MAX_ERRORS = 10  # errors listed in the summary (all are counted)
CONCURRENCY = 8  # participants evaluated at once


@dataclass(frozen=True, slots=True)
class Candidate:
    """A participant as the read model has it: enough to tell whether it qualifies."""

    participant_id: str
    total_earned: int
    sections: dict[str, Any]


# The page of candidates after a participant id (None: from the start), in id order; [] at the end.
Pages = Callable[[str | None], Awaitable[list[Candidate]]]


@dataclass(slots=True)
class Summary:
    """What one evaluation did: participants scanned, qualifying, and what became of those.

    ``changed``: a commit gave the tier or badge (and whatever else the rules decided);
    ``replayed``: this definition version was already evaluated on them; ``unchanged``: the
    rules decided nothing (they changed since the scan); ``failed``: retry the evaluation.
    """

    scanned: int = 0
    qualified: int = 0
    changed: int = 0
    replayed: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "scanned": self.scanned,
            "qualified": self.qualified,
            "changed": self.changed,
            "replayed": self.replayed,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "errors": list(self.errors),
        }


async def evaluate_definition(
    deps: Deps,
    ctx: Context,
    kind: str,
    definition: dict[str, Any],
    version: int,
    pages: Pages,
) -> Summary:
    """Run EvaluateParticipant on every participant who qualifies for ``definition`` now.

    One commit per participant, through the normal command path, keyed
    ``evaluate:<id>:<version>``: running it again replays instead of writing. Progress is
    logged after every page.
    """
    keyed = replace(ctx, idempotency_key=evaluation_key(definition["id"], version))
    summary = Summary()
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(pid: str) -> None:
        async with gate:
            await _evaluate_one(deps, keyed, pid, summary)

    after: str | None = None
    while page := await pages(after):
        after = page[-1].participant_id
        summary.scanned += len(page)
        targets = [c for c in page if qualifies(kind, definition, c.total_earned, c.sections)]
        summary.qualified += len(targets)
        await asyncio.gather(*[one(c.participant_id) for c in targets])
        logger.info(
            "evaluating %s %s/%s: %d scanned, %d qualified, %d changed",
            kind,
            ctx.tenant,
            definition["code"],
            summary.scanned,
            summary.qualified,
            summary.changed,
        )
    return summary


async def _evaluate_one(deps: Deps, ctx: Context, pid: str, summary: Summary) -> None:
    try:
        result = await execute(deps, ctx, EvaluateParticipant(pid))
    except (DomainError, ConcurrencyConflict, NotYetProjected, IdempotencyKeyReused) as exc:
        summary.failed += 1
        if len(summary.errors) < MAX_ERRORS:
            summary.errors.append({"participant_id": pid, "error": str(exc)})
        return
    if result.replayed:
        summary.replayed += 1
    elif result.events:
        summary.changed += 1
    else:
        summary.unchanged += 1

"""The decision engine: a draft participant, the catalog of definitions, and consequences.

A command's decider adds events to a ``Draft``; the draft folds each event (schemas.sections)
so the consequence rules (a tier crossed, a badge unlocked) see the participant as it will be.
Consequences are decided in the same commit as their cause, so history never changes when
definitions change later.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from schemas.events import (
    Event,
    ParticipantRegistered,
    PointsAwarded,
    PointsDeducted,
    PointsExpired,
)
from schemas.sections import Sections, fold

MAX_ROUNDS = 10  # consequences of consequences (a badge's points crossing a tier) settle fast


@dataclass(frozen=True, slots=True)
class Catalog:
    """A tenant's active definitions, as the engine reads them (bodies plus ``id`` and ``code``)."""

    tiers: tuple[dict[str, Any], ...] = ()
    badges: tuple[dict[str, Any], ...] = ()
    streaks: dict[str, dict[str, Any]] = field(default_factory=dict)
    challenges: tuple[dict[str, Any], ...] = ()
    rules: tuple[dict[str, Any], ...] = ()
    rewards: dict[str, dict[str, Any]] = field(default_factory=dict)
    leaderboards: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, definitions: Iterable[tuple[str, str, str, dict[str, Any]]]) -> Catalog:
        """Build from (kind, id, code, body) of active definitions."""
        by_kind: dict[str, list[dict[str, Any]]] = {}
        for kind, id_, code, body in definitions:
            by_kind.setdefault(kind, []).append({**body, "id": id_, "code": code})
        tiers = sorted(by_kind.get("tier", []), key=lambda t: (t.get("level", 0), t["code"]))
        return cls(
            tiers=tuple(tiers),
            badges=tuple(by_kind.get("badge", [])),
            streaks={s["code"]: s for s in by_kind.get("streak", [])},
            challenges=tuple(by_kind.get("challenge", [])),
            rules=tuple(by_kind.get("rule", [])),
            rewards={r["id"]: r for r in by_kind.get("reward", [])},
            leaderboards={lb["code"]: lb for lb in by_kind.get("leaderboard", [])},
        )


class Draft:
    """A participant while one command is decided: stored state plus the events decided so far."""

    def __init__(
        self,
        state: Any,
        *,
        catalog: Catalog,
        now: datetime,
        new_id: Callable[[], str],
        at: str,
    ) -> None:
        self.exists = state is not None
        self.version = state.version if state else 0
        self.balance = state.balance if state else 0
        self.total_earned = state.total_earned if state else 0
        self.total_spent = state.total_spent if state else 0
        self.sections: Sections = dict(state.sections) if state else {}
        self.catalog, self.now, self.new_id, self.at = catalog, now, new_id, at
        self.events: list[Event] = []

    def ensure_exists(self) -> None:
        """Participants are created on first use, in the same commit."""
        if not self.exists:
            self.add(ParticipantRegistered(auto_created=True))

    def add(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, ParticipantRegistered):
            self.exists = True
        elif isinstance(event, PointsAwarded):
            self.balance += event.amount
            self.total_earned += event.amount
        elif isinstance(event, PointsDeducted):
            self.balance -= event.amount
            self.total_spent += event.amount
        elif isinstance(event, PointsExpired):
            self.balance -= event.amount  # expiry is not spending: total_spent stays
        self.sections = fold(event, self.sections, self.at)

    def award(
        self,
        amount: int,
        reason: str | None,
        metadata: dict[str, Any],
        *,
        multiplied: bool = False,
        expires_at: str | None = None,
    ) -> PointsAwarded:
        """Add a PointsAwarded of ``amount`` (a request, a rule, a challenge's reward).

        With ``multiplied`` (direct awards and earn rules), the tier held now multiplies it.
        """
        factor = tier_multiplier(self.catalog, self.sections) if multiplied else None
        credited = amount if factor is None else multiply(amount, factor)
        event = PointsAwarded(
            transaction_id=self.new_id(),
            amount=credited,
            balance_after=self.balance + credited,
            reason=reason,
            metadata=metadata,
            base_amount=amount,
            multiplier=None if factor is None else format(factor, "f"),
            expires_at=expires_at,
        )
        self.add(event)
        return event


def tier_multiplier(catalog: Catalog, sections: Sections) -> Decimal | None:
    """The ``multiplier`` of the tier held (an active definition), or None if it has none.

    A multiplier of exactly 1 is None too: nothing to record.
    """
    held = (sections.get("tier") or {}).get("code")
    tier = next((t for t in catalog.tiers if t["code"] == held), None) if held else None
    raw = (tier or {}).get("multiplier")
    if raw is None or isinstance(raw, bool):
        return None
    try:
        factor = Decimal(str(raw))
    except InvalidOperation:
        return None
    if not factor.is_finite() or factor <= 0 or factor == 1:
        return None
    return factor.normalize()


def multiply(amount: int, factor: Decimal) -> int:
    """``amount`` x ``factor`` floored to an integer, exactly (Decimal, never float)."""
    return math.floor(Decimal(amount) * factor)


# Consequence rules run after every command until none adds an event.
CONSEQUENCES: list[Callable[[Draft], None]] = []


def consequence(rule: Callable[[Draft], None]) -> Callable[[Draft], None]:
    CONSEQUENCES.append(rule)
    return rule


def settle(draft: Draft) -> None:
    """Run the consequence rules to a fixpoint (bounded)."""
    for _ in range(MAX_ROUNDS):
        before = len(draft.events)
        for rule in CONSEQUENCES:
            rule(draft)
        if len(draft.events) == before:
            return

"""Tiers: upgrades on lifetime points inside every award, and manual assignment."""

from __future__ import annotations

from typing import Any

from schemas.events import TierChanged
from services.participants.commands import AssignTier
from services.participants.domain import UnknownDefinition, decider
from services.participants.engine import Catalog, Draft, consequence


def min_points(tier: dict[str, Any]) -> int:
    return int((tier.get("criteria_config") or {}).get("min_points", 0))


def automatic(catalog: Catalog) -> list[dict[str, Any]]:
    """Tiers reached by points, ordered by level (never by code)."""
    return [t for t in catalog.tiers if t.get("award_type", "automatic") == "automatic"]


def qualifying(catalog: Catalog, lifetime_points: int) -> dict[str, Any] | None:
    """The highest automatic tier whose threshold ``lifetime_points`` reaches."""
    reached = [t for t in automatic(catalog) if min_points(t) <= lifetime_points]
    return reached[-1] if reached else None


def _above(catalog: Catalog, current_level: int | None) -> list[dict[str, Any]]:
    return [t for t in automatic(catalog) if current_level is None or t["level"] > current_level]


def next_tier(
    catalog: Catalog, current_level: int | None, lifetime_points: int
) -> dict[str, Any] | None:
    """The first automatic tier above ``current_level`` that ``lifetime_points`` do not reach.

    So ``points_remaining`` is never 0: a tier already reached but not yet held (a definition
    created after the participant qualified) is ``pending``, not next.
    """
    ahead = [t for t in _above(catalog, current_level) if min_points(t) > lifetime_points]
    return ahead[0] if ahead else None


def pending(
    catalog: Catalog, current_level: int | None, lifetime_points: int
) -> dict[str, Any] | None:
    """The highest automatic tier above ``current_level`` that ``lifetime_points`` reach.

    Not held yet because no command ran since it became reachable (its definition is newer than
    the participant's last award); the next award or event, or an evaluation, gives it.
    """
    reached = [t for t in _above(catalog, current_level) if min_points(t) <= lifetime_points]
    return reached[-1] if reached else None


def _change(draft: Draft, tier: dict[str, Any], *, manual: bool, reason: str | None = None) -> None:
    current = draft.sections.get("tier") or {}
    draft.add(
        TierChanged(
            code=tier["code"],
            name=tier.get("name", tier["code"]),
            level=int(tier.get("level", 0)),
            color=tier.get("color"),
            previous_code=current.get("code"),
            previous_level=current.get("level"),
            manual=manual,
            reason=reason,
        )
    )


@consequence
def upgrade(draft: Draft) -> None:
    """Lifetime points only grow, so tiers only go up; a lower manual tier is upgraded too."""
    if not draft.exists:
        return
    target = qualifying(draft.catalog, draft.total_earned)
    current = draft.sections.get("tier")
    if target is not None and (current is None or int(target["level"]) > int(current["level"])):
        _change(draft, target, manual=False)


@decider(AssignTier)
def assign(draft: Draft, command: AssignTier) -> None:
    tier = next((t for t in draft.catalog.tiers if t["code"] == command.tier_code), None)
    if tier is None:
        raise UnknownDefinition("tier", command.tier_code)
    draft.ensure_exists()
    if (draft.sections.get("tier") or {}).get("code") != tier["code"]:
        _change(draft, tier, manual=True, reason=command.reason)

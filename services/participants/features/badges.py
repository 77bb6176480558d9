"""Badges: awarded through the API once per participant, or unlocked by their criteria."""

from __future__ import annotations

from typing import Any

from schemas.events import BadgeEarned
from services.participants.commands import AwardBadge
from services.participants.domain import UnknownDefinition, decider
from services.participants.engine import Draft, consequence


def earned(draft: Draft, code: str) -> bool:
    return code in draft.sections.get("badges", {})


def _earn(
    draft: Draft,
    badge: dict[str, Any],
    *,
    manual: bool,
    metadata: dict[str, Any] | None = None,
) -> None:
    draft.add(
        BadgeEarned(
            code=badge["code"],
            name=badge.get("name", badge["code"]),
            rarity=badge.get("rarity"),
            manual=manual,
            metadata=dict(metadata or {}),
        )
    )


def criteria_met(badge: dict[str, Any], sections: dict[str, Any], lifetime_points: int) -> bool:
    """All given criteria hold: lifetime points, an event count, a streak length (longest)."""
    criteria = badge.get("criteria_config") or {}
    if not criteria:
        return False
    if "min_points" in criteria and lifetime_points < int(criteria["min_points"]):
        return False
    if "event_name" in criteria:
        count = sections.get("event_counts", {}).get(criteria["event_name"], 0)
        if count < int(criteria.get("event_count", 1)):
            return False
    if "streak_code" in criteria:
        streak = sections.get("streaks", {}).get(criteria["streak_code"], {})
        if int(streak.get("longest", 0)) < int(criteria.get("streak_length", 1)):
            return False
    return True


@consequence
def unlock(draft: Draft) -> None:
    """Automatic badges whose criteria now hold are earned in the same commit."""
    if not draft.exists:
        return
    for badge in draft.catalog.badges:
        if badge.get("award_type", "automatic") != "automatic" or earned(draft, badge["code"]):
            continue
        if criteria_met(badge, draft.sections, draft.total_earned):
            _earn(draft, badge, manual=False)


@decider(AwardBadge)
def award(draft: Draft, command: AwardBadge) -> None:
    badge = next((b for b in draft.catalog.badges if b["code"] == command.badge_code), None)
    if badge is None:
        raise UnknownDefinition("badge", command.badge_code)
    draft.ensure_exists()
    if not earned(draft, badge["code"]):
        _earn(draft, badge, manual=True, metadata=command.metadata)

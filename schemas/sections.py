"""What engine events mean for a participant's state: one fold shared by decisions and read models.

The command side folds decided events into a draft to find their consequences (a tier crossed,
a badge unlocked); the projector folds the same events into the participant row. Both call
``fold`` so they can never disagree. Sections are plain JSON: ``tier``, ``badges``,
``event_counts``, ``first_event_at``, ``last_event_at``, ``streaks``, ``challenges``,
``reward_claims``, ``point_lots``.

``point_lots`` (docs/points-expiry.md) lists the open expiring credits, soonest expiry first
(awards with the same expiry in award order): ``{"id": <the award's transaction_id>,
"expires_at": "YYYY-MM-DDTHH:MM:SSZ", "remaining": <unspent points, > 0>}``. Every spend
(``PointsDeducted``: deductions and reward claims) consumes them in that order before the
non-expiring points; ``PointsExpired`` closes one. A participant who never had an expiring
credit has no ``point_lots`` key; one whose lots are all closed keeps an empty list.
"""

from __future__ import annotations

from bisect import insort_right
from functools import singledispatch
from typing import Any

from schemas.events import (
    BadgeEarned,
    ChallengeCompleted,
    ChallengeProgressed,
    Event,
    EventTracked,
    PointsAwarded,
    PointsDeducted,
    PointsExpired,
    RewardClaimed,
    StreakBroken,
    StreakExtended,
    TierChanged,
)

Sections = dict[str, Any]


@singledispatch
def fold(event: Event, sections: Sections, at: str) -> Sections:
    """The sections after ``event`` (recorded at ``at``); a new dict, the input is untouched."""
    return sections


@fold.register
def _(event: TierChanged, sections: Sections, at: str) -> Sections:
    tier = {
        "code": event.code,
        "name": event.name,
        "level": event.level,
        "color": event.color,
        "achieved_at": at,
    }
    return {**sections, "tier": tier}


@fold.register
def _(event: BadgeEarned, sections: Sections, at: str) -> Sections:
    badge = {"name": event.name, "rarity": event.rarity, "earned_at": at, "manual": event.manual}
    return {**sections, "badges": {**sections.get("badges", {}), event.code: badge}}


@fold.register
def _(event: EventTracked, sections: Sections, at: str) -> Sections:
    counts = dict(sections.get("event_counts", {}))
    counts[event.event_name] = counts.get(event.event_name, 0) + 1
    first = sections.get("first_event_at")
    last = sections.get("last_event_at")
    return {
        **sections,
        "event_counts": counts,
        "first_event_at": min(first, event.occurred_at) if first else event.occurred_at,
        "last_event_at": max(last, event.occurred_at) if last else event.occurred_at,
    }


@fold.register
def _(event: StreakExtended, sections: Sections, at: str) -> Sections:
    streak = {
        "count": event.count,
        "longest": event.longest,
        "period": event.period,
        "last_recorded_at": event.recorded_at,
        "freezes_available": event.freezes_available,
        "freezes_granted_through": event.freezes_granted_through,
    }
    return {**sections, "streaks": {**sections.get("streaks", {}), event.code: streak}}


@fold.register
def _(event: StreakBroken, sections: Sections, at: str) -> Sections:
    streaks = dict(sections.get("streaks", {}))
    if event.code in streaks:
        streaks[event.code] = {**streaks[event.code], "count": 0}
    return {**sections, "streaks": streaks}


@fold.register
def _(event: ChallengeProgressed, sections: Sections, at: str) -> Sections:
    current = sections.get("challenges", {}).get(event.code, {})
    done = current.get("completed_at") if current.get("window") == event.window else None
    entry = {"window": event.window, "progress": dict(event.progress), "completed_at": done}
    return {**sections, "challenges": {**sections.get("challenges", {}), event.code: entry}}


@fold.register
def _(event: ChallengeCompleted, sections: Sections, at: str) -> Sections:
    challenges = dict(sections.get("challenges", {}))
    entry = challenges.get(event.code, {"window": event.window, "progress": {}})
    challenges[event.code] = {**entry, "window": event.window, "completed_at": at}
    return {**sections, "challenges": challenges}


@fold.register
def _(event: RewardClaimed, sections: Sections, at: str) -> Sections:
    claims = dict(sections.get("reward_claims", {}))
    claims[event.reward_id] = claims.get(event.reward_id, 0) + 1
    return {**sections, "reward_claims": claims}


LOTS = "point_lots"


@fold.register
def _(event: PointsAwarded, sections: Sections, at: str) -> Sections:
    if not event.expires_at or event.amount <= 0:
        return sections
    lots = list(sections.get(LOTS, ()))
    lot = {"id": event.transaction_id, "expires_at": event.expires_at, "remaining": event.amount}
    # after every lot expiring no later: soonest expiry first, same expiry in award order
    insort_right(lots, lot, key=_expiry)
    return {**sections, LOTS: lots}


def _expiry(lot: dict[str, Any]) -> str:
    return lot["expires_at"]  # type: ignore[no-any-return]  # UTC "...Z": sorts as text


@fold.register
def _(event: PointsDeducted, sections: Sections, at: str) -> Sections:
    lots = sections.get(LOTS)
    if not lots:
        return sections
    left, kept = event.amount, []
    for lot in lots:
        used = min(left, lot["remaining"])
        left -= used
        if lot["remaining"] > used:
            kept.append(lot if used == 0 else {**lot, "remaining": lot["remaining"] - used})
    return {**sections, LOTS: kept}


@fold.register
def _(event: PointsExpired, sections: Sections, at: str) -> Sections:
    lots = sections.get(LOTS)
    if not lots:
        return sections
    return {**sections, LOTS: [lot for lot in lots if lot["id"] != event.lot_id]}


def open_lots(sections: Sections) -> list[dict[str, Any]]:
    """The participant's open expiring credits, soonest expiry first (see the module doc)."""
    return list(sections.get(LOTS, ()))


def due_lots(sections: Sections, at: str) -> list[dict[str, Any]]:
    """The open lots whose ``expires_at`` is not after ``at`` (both ``YYYY-MM-DDTHH:MM:SSZ``)."""
    return [lot for lot in sections.get(LOTS, ()) if lot["expires_at"] <= at]

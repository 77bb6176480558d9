"""JSON shapes of the Participants API, built from read-model rows (see the reference)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from projections.participants.queries import ParticipantRow
from schemas.sections import open_lots
from services.api import sections
from services.participants.engine import Catalog

STATE_SECTIONS = ("points", "tier", "badges", "streaks", "challenges", "rewards")


def points(row: ParticipantRow) -> dict[str, int]:
    return {
        "balance": row.balance,
        "total_earned": row.total_earned,
        "total_spent": row.total_spent,
    }


EXPIRING_SOON_ENTRIES = 10


def expiring_soon(row: ParticipantRow) -> list[dict[str, Any]]:
    """What expires next: the open expiring credits' unspent points summed per ``expires_at``,
    soonest first, at most EXPIRING_SOON_ENTRIES entries (GET /participants/{pid}/points).

    Only the points answer carries it: the profile and state answers keep the reference's key
    sets (participants-api.md). Docs: docs/points-expiry.md.
    """
    moments: dict[str, int] = {}
    for lot in open_lots(row.sections):
        if len(moments) == EXPIRING_SOON_ENTRIES and lot["expires_at"] not in moments:
            break
        moments[lot["expires_at"]] = moments.get(lot["expires_at"], 0) + lot["remaining"]
    return [{"amount": amount, "expires_at": at} for at, amount in moments.items()]


def _common(row: ParticipantRow, catalog: Catalog, now: datetime) -> dict[str, Any]:
    return {
        "participant_id": row.participant_id,
        "display_name": row.display_name,
        "avatar_url": row.avatar_url,
        "attributes": row.attributes,
        "points": points(row),
        "tier": sections.tier_detail(row, catalog),
        "badges": sections.earned_badges(row),
        "streaks": sections.best_streak(row, catalog, now),
        "rewards_claimed": row.rewards_claimed,
        "total_events": row.total_events,
    }


def profile(row: ParticipantRow, catalog: Catalog, now: datetime) -> dict[str, Any]:
    """The rich profile of GET and PATCH /participants/{pid} (participants-api.md's profile).

    The reference's keys exactly: ``first_seen_at`` (creation) and ``last_seen_at`` (latest
    accepted command), no ``created_at``.
    """
    return {
        **_common(row, catalog, now),
        "first_seen_at": row.created_at,
        "last_seen_at": row.last_seen_at,
        "is_active": row.is_active,
    }


def created(row: ParticipantRow, catalog: Catalog, now: datetime) -> dict[str, Any]:
    """The answer of POST /participants (participants-api.md's create shape).

    The reference's keys exactly: ``created_at``, no ``first_seen_at``/``last_seen_at``.
    """
    return {**_common(row, catalog, now), "is_active": row.is_active, "created_at": row.created_at}


def state(
    row: ParticipantRow, include: tuple[str, ...], catalog: Catalog, now: datetime
) -> dict[str, Any]:
    """The unified state with the selected sections, in the reference's order."""
    build = {
        "points": lambda: points(row),
        "tier": lambda: sections.tier_brief(row),
        "badges": lambda: [
            {"code": b["code"], "earned": b["earned"], "earned_at": b["earned_at"]}
            for b in sections.all_badges(row, catalog)
        ],
        "streaks": lambda: _streak_brief(sections.best_streak(row, catalog, now)),
        "challenges": lambda: sections.challenge_counts(row, catalog, now),
        "rewards": lambda: {"total_claimed": row.rewards_claimed},
    }
    return {
        "participant_id": row.participant_id,
        **{name: build[name]() for name in STATE_SECTIONS if name in include},
    }


def _streak_brief(best: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if best is None else {"current": best["current"], "longest": best["longest"]}

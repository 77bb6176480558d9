"""JSON shapes of the Participants API, built from read-model rows (see the reference)."""

from __future__ import annotations

from typing import Any

from projections.participants.queries import ParticipantRow

STATE_SECTIONS = ("points", "tier", "badges", "streaks", "challenges", "rewards")


def points(row: ParticipantRow) -> dict[str, int]:
    return {
        "balance": row.balance,
        "total_earned": row.total_earned,
        "total_spent": row.total_spent,
    }


def profile(row: ParticipantRow) -> dict[str, Any]:
    """The rich profile of GET /participants/{pid}; also the body of POST and PATCH."""
    return {
        "participant_id": row.participant_id,
        "display_name": row.display_name,
        "avatar_url": row.avatar_url,
        "attributes": row.attributes,
        "points": points(row),
        "tier": None,
        "badges": [],
        "streaks": None,
        "rewards_claimed": row.rewards_claimed,
        "total_events": row.total_events,
        "first_seen_at": row.created_at,
        "last_seen_at": row.last_seen_at,
        "is_active": row.is_active,
        "created_at": row.created_at,
    }


def state(row: ParticipantRow, include: tuple[str, ...]) -> dict[str, Any]:
    """The unified state with the selected sections, in the reference's order."""
    sections: dict[str, Any] = {
        "points": points(row),
        "tier": None,
        "badges": [],
        "streaks": None,
        "challenges": {"active": 0, "completed": 0},
        "rewards": {"total_claimed": row.rewards_claimed},
    }
    return {
        "participant_id": row.participant_id,
        **{name: sections[name] for name in STATE_SECTIONS if name in include},
    }

"""The engine's sections of the profile and the state, from the row and the definitions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from projections.participants.queries import ParticipantRow
from services.participants.engine import Catalog
from services.participants.features import challenges, streaks, tiers


def tier_detail(row: ParticipantRow, catalog: Catalog) -> dict[str, Any] | None:
    """The current tier with next-tier progress (profile and GET /tier)."""
    current = row.section("tier")
    if current is None:
        return None
    return {
        **tier_brief(row),
        "color": current.get("color"),
        "achieved_at": current["achieved_at"],
        "next_tier": next_tier(row, catalog),
    }


def next_tier(row: ParticipantRow, catalog: Catalog) -> dict[str, Any] | None:
    """``{code, name, points_required, points_remaining}`` of the next tier (the reference's keys).

    ``points_remaining`` is lifetime points still missing, always at least 1.
    """
    current = row.section("tier")
    upcoming = tiers.next_tier(catalog, current["level"] if current else None, row.total_earned)
    if upcoming is None:
        return None
    required = tiers.min_points(upcoming)
    return {
        "code": upcoming["code"],
        "name": upcoming.get("name"),
        "points_required": required,
        "points_remaining": required - row.total_earned,
    }


def pending_tier(row: ParticipantRow, catalog: Catalog) -> dict[str, Any] | None:
    """``{code, name, level}`` of a tier reached but not held yet (see tiers.pending), or None."""
    current = row.section("tier")
    reached = tiers.pending(catalog, current["level"] if current else None, row.total_earned)
    if reached is None:
        return None
    return {"code": reached["code"], "name": reached.get("name"), "level": reached.get("level")}


def tier_brief(row: ParticipantRow) -> dict[str, Any] | None:
    current = row.section("tier")
    if current is None:
        return None
    return {"code": current["code"], "name": current["name"], "level": current["level"]}


def tier_current(row: ParticipantRow) -> dict[str, Any] | None:
    """The current tier in the reference's field order (GET /tier)."""
    current = row.section("tier")
    if current is None:
        return None
    return {**tier_brief(row), "color": current.get("color"), "achieved_at": current["achieved_at"]}


def earned_badges(row: ParticipantRow) -> list[dict[str, Any]]:
    """Earned badges, oldest first (profile)."""
    found = row.section("badges", {})
    return [
        {
            "code": code,
            "name": b["name"],
            "rarity": b.get("rarity"),
            "earned": True,
            "earned_at": b["earned_at"],
        }
        for code, b in sorted(found.items(), key=lambda kv: (kv[1]["earned_at"], kv[0]))
    ]


def all_badges(row: ParticipantRow, catalog: Catalog) -> list[dict[str, Any]]:
    """Every active badge, earned or not, then earned badges no longer active (state, GET).

    ``icon`` is the definition's ``icon_url`` (the reference names it so in participant answers).
    """
    found = row.section("badges", {})
    listed = [
        {
            "code": b["code"],
            "name": b.get("name"),
            "description": b.get("description"),
            "icon": b.get("icon_url"),
            "rarity": b.get("rarity"),
            "earned": b["code"] in found,
            "earned_at": found.get(b["code"], {}).get("earned_at"),
        }
        for b in sorted(catalog.badges, key=lambda b: (b.get("display_order", 0), b["code"]))
    ]
    active = {b["code"] for b in catalog.badges}
    listed += [
        {
            "code": code,
            "name": b["name"],
            "description": None,
            "icon": None,
            "rarity": b.get("rarity"),
            "earned": True,
            "earned_at": b["earned_at"],
        }
        for code, b in sorted(found.items())
        if code not in active
    ]
    return listed


def best_streak(row: ParticipantRow, catalog: Catalog, now: datetime) -> dict[str, Any] | None:
    return streaks.best(row.section("streaks", {}), catalog, now)


def challenge_counts(row: ParticipantRow, catalog: Catalog, now: datetime) -> dict[str, int]:
    return challenges.counts(row.section("challenges", {}), catalog, now)

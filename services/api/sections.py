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
    current = row.section("tier")
    upcoming = tiers.next_tier(catalog, current["level"] if current else None)
    if upcoming is None:
        return None
    required = tiers.min_points(upcoming)
    return {
        "code": upcoming["code"],
        "name": upcoming.get("name"),
        "level": upcoming.get("level"),
        "points_required": required,
        "points_remaining": max(0, required - row.total_earned),
    }


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
    """Every active badge, earned or not, then earned badges no longer active (state, GET)."""
    found = row.section("badges", {})
    listed = [
        {
            "code": b["code"],
            "name": b.get("name"),
            "description": b.get("description"),
            "rarity": b.get("rarity"),
            "icon_url": b.get("icon_url"),
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
            "rarity": b.get("rarity"),
            "icon_url": None,
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

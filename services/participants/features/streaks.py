"""Streaks: one tick per period, grace, freezes (to be built)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.participants.engine import Catalog


def best(states: dict[str, Any], catalog: Catalog, now: datetime) -> dict[str, Any] | None:
    """The participant's best streak for the profile: ``current``, ``longest``, ``last_activity_at``."""
    return None

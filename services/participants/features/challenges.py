"""Challenges: objectives that count named events within a window (to be built)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.events import EventTracked
from services.participants.engine import Catalog, Draft


def progress(draft: Draft, event: EventTracked) -> None:
    """Count ``event`` toward every active challenge it belongs to; complete those now met."""
    return None


def counts(states: dict[str, Any], catalog: Catalog, now: datetime) -> dict[str, int]:
    """How many challenges are active (joined, not completed, window open) and completed."""
    return {"active": 0, "completed": 0}

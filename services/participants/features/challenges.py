"""Challenges: objectives that count named events within a window; completion pays rewards.

A participant joins a challenge implicitly with the first event that counts toward it
(auto-enrolment). Each counted event adds one to every objective it matches, capped at the
objective's ``count``. Windows: ``perpetual`` (one window forever), ``fixed`` (events whose
``occurred_at`` is in [starts_at, ends_at)), ``rolling`` (``days`` long, starting at the
participant's first counted event; a counted event after the window ends starts a new one with
fresh progress, and the challenge can be completed, and rewarded, again). A challenge completed
in a window ignores further events of that window.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.events import BadgeEarned, ChallengeCompleted, ChallengeProgressed, EventTracked
from services.participants.engine import Catalog, Draft
from services.participants.features import badges

# A module, not its names: events imports this module too (matches() is looked up at call time).
from services.participants.features import events as tracked

ROLLING = "rolling:"
DEFAULT_ROLLING_DAYS = 7
MAX_ROLLING_DAYS = 3650  # schemas/json/definitions/challenge.v1.json


def progress(draft: Draft, event: EventTracked) -> None:
    """Count ``event`` toward every active challenge it belongs to; complete those now met."""
    when = moment(event.occurred_at) or draft.now
    for challenge in ordered(draft.catalog.challenges):
        objectives = challenge.get("objectives") or []
        hits = [o for o in objectives if _counts(o, event)]
        if not hits:
            continue
        entry = draft.sections.get("challenges", {}).get(challenge["code"], {})
        window = _window(challenge, entry, when)
        if window is None:
            continue
        same = entry.get("window") == window
        if same and entry.get("completed_at"):
            continue
        stored = entry.get("progress", {}) if same else {}
        before = {o["id"]: min(int(stored.get(o["id"], 0)), target(o)) for o in objectives}
        after = dict(before)
        for objective in hits:
            after[objective["id"]] = min(after[objective["id"]] + 1, target(objective))
        done = all(after[o["id"]] >= target(o) for o in objectives)
        if same and after == before and not done:
            continue
        if not same or after != before:
            draft.add(ChallengeProgressed(code=challenge["code"], window=window, progress=after))
        if done:
            _complete(draft, challenge, window, event)


def counts(states: dict[str, Any], catalog: Catalog, now: datetime) -> dict[str, int]:
    """How many challenges are active (joined, not completed, window open) and completed.

    Both count the current window only: a rolling window that has ended no longer counts.
    """
    active = {c["code"]: c for c in catalog.challenges}
    found = {"active": 0, "completed": 0}
    for code, entry in states.items():
        definition = active.get(code)
        joined = current(entry, definition, now)
        if joined is None:
            continue
        if joined.get("completed_at"):
            found["completed"] += 1
        elif definition is not None and is_open(definition, joined["window"], now):
            found["active"] += 1
    return found


def ordered(challenges: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return sorted(challenges, key=lambda c: (c.get("display_order", 0), c["code"]))


def target(objective: dict[str, Any]) -> int:
    return max(1, int(objective.get("count", 1)))


def window_type(definition: dict[str, Any]) -> str:
    kind = (definition.get("window") or {}).get("type", "perpetual")
    return kind if kind in ("fixed", "rolling") else "perpetual"


def rolling_days(definition: dict[str, Any]) -> int:
    days = int((definition.get("window") or {}).get("days") or DEFAULT_ROLLING_DAYS)
    return max(1, min(MAX_ROLLING_DAYS, days))


def bounds(definition: dict[str, Any], key: str | None) -> tuple[datetime | None, datetime | None]:
    """The window's [start, end): fixed from the definition, rolling from the key's start."""
    spec = definition.get("window") or {}
    kind = window_type(definition)
    if kind == "fixed":
        return moment(spec.get("starts_at")), moment(spec.get("ends_at"))
    if kind == "rolling" and key and key.startswith(ROLLING):
        start = moment(key[len(ROLLING) :])
        if start is not None:
            return start, start + timedelta(days=rolling_days(definition))
    return None, None


def is_open(definition: dict[str, Any], key: str | None, now: datetime) -> bool:
    """Whether events at ``now`` would count in the window ``key`` (None: not joined yet)."""
    start, end = bounds(definition, key)
    return (start is None or start <= now) and (end is None or now < end)


def current(
    entry: dict[str, Any], definition: dict[str, Any] | None, now: datetime
) -> dict[str, Any] | None:
    """The participant's entry if it is still the current window at ``now``, else None: a
    rolling window that ended, or a window of another type than the definition has now."""
    key = entry.get("window")
    if not key:
        return None
    if definition is None:
        return entry
    kind = window_type(definition)
    if kind == "rolling":
        _, end = bounds(definition, key)
        return entry if end is not None and now < end else None
    return entry if key == kind else None


def moment(text: Any) -> datetime | None:
    """An ISO-8601 date-time as an aware UTC datetime (no offset: UTC); None if not one."""
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _counts(objective: dict[str, Any], event: EventTracked) -> bool:
    return objective.get("event_name") == event.event_name and tracked.matches(
        objective.get("conditions"), event.properties
    )


def _window(challenge: dict[str, Any], entry: dict[str, Any], when: datetime) -> str | None:
    """The window an event at ``when`` counts in, or None when it counts in none."""
    kind = window_type(challenge)
    if kind == "fixed":
        return "fixed" if is_open(challenge, "fixed", when) else None
    if kind == "rolling":
        key = entry.get("window")
        start, end = bounds(challenge, key)
        if start is not None and end is not None:
            if when < start:
                return None  # back-dated before the current window: that window is gone
            if when < end:
                return str(key)
        return f"{ROLLING}{iso(when)}"
    return "perpetual"


def _complete(draft: Draft, challenge: dict[str, Any], window: str, event: EventTracked) -> None:
    """Completion and its rewards, in the same commit as the event that completed it."""
    code = challenge["code"]
    draft.add(ChallengeCompleted(code=code, window=window))
    rewards = challenge.get("rewards") or {}
    points = int(rewards.get("points") or 0)
    if points > 0:
        metadata = {"challenge": code, "window": window, "event_id": event.event_id}
        draft.award(points, f"challenge:{code}", metadata)
    badge_code = rewards.get("badge_code")
    badge = next((b for b in draft.catalog.badges if b["code"] == badge_code), None)
    if badge is not None and not badges.earned(draft, badge["code"]):
        draft.add(
            BadgeEarned(
                code=badge["code"],
                name=badge.get("name", badge["code"]),
                rarity=badge.get("rarity"),
                manual=False,
            )
        )

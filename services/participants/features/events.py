"""Custom events: recorded as facts, then earn rules award points and challenges progress."""

from __future__ import annotations

import math
from typing import Any

from schemas.events import EventTracked
from services.participants.commands import TrackEvent
from services.participants.domain import decider
from services.participants.engine import Draft
from services.participants.features import challenges


def matches(conditions: dict[str, Any] | None, properties: dict[str, Any]) -> bool:
    """Every condition holds: a value means equality; an object may use eq, ne, gt, gte, lt,
    lte, in (a list), exists (a boolean)."""
    for name, wanted in (conditions or {}).items():
        present = name in properties
        value = properties.get(name)
        if isinstance(wanted, dict):
            for op, operand in wanted.items():
                if not _holds(op, value, operand, present):
                    return False
        elif not present or value != wanted:
            return False
    return True


def _holds(op: str, value: Any, operand: Any, present: bool) -> bool:
    if op == "exists":
        return present == bool(operand)
    if not present:
        return False
    if op == "eq":
        return bool(value == operand)
    if op == "ne":
        return bool(value != operand)
    if op == "in":
        return value in operand
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if not numeric or not isinstance(operand, int | float):
        return False
    return {
        "gt": value > operand,
        "gte": value >= operand,
        "lt": value < operand,
        "lte": value <= operand,
    }.get(op, False)


def rule_points(rule: dict[str, Any], properties: dict[str, Any]) -> int:
    """Points a matching rule awards: ``points``, or ``points_property`` x ``multiplier``."""
    if rule.get("points"):
        return int(rule["points"])
    raw = properties.get(rule.get("points_property", ""))
    if not isinstance(raw, int | float) or isinstance(raw, bool):
        return 0
    return max(0, min(1_000_000, math.floor(raw * float(rule.get("multiplier", 1)))))


@decider(TrackEvent)
def track(draft: Draft, command: TrackEvent) -> None:
    draft.ensure_exists()
    event = EventTracked(
        event_id=draft.new_id(),
        event_name=command.event_name,
        properties=dict(command.properties),
        occurred_at=command.timestamp or draft.at,
    )
    draft.add(event)
    for rule in draft.catalog.rules:
        if rule["event_name"] == event.event_name and matches(
            rule.get("conditions"), event.properties
        ):
            amount = rule_points(rule, event.properties)
            if amount > 0:
                draft.award(
                    amount,
                    f"rule:{rule['code']}",
                    {"event_id": event.event_id, "rule": rule["code"]},
                    multiplied=True,
                )
    challenges.progress(draft, event)

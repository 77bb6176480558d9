"""Custom events: recorded as facts, then earn rules award points and challenges progress."""

from __future__ import annotations

import math
from decimal import ROUND_FLOOR, Decimal, InvalidOperation, localcontext
from typing import Any

from schemas.events import EventTracked
from services.participants.commands import TrackEvent
from services.participants.domain import decider
from services.participants.engine import Draft
from services.participants.features import challenges

MAX_RULE_POINTS = 1_000_000  # one rule match awards at most what one award may (points.award)


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
        return isinstance(operand, list) and value in operand
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
    """Points a matching rule awards: ``points``, or ``points_property`` x ``multiplier``.

    The product is exact decimal arithmetic on the numbers as written in JSON, floored
    (0.57 x 100 = 57, 1.15 x 100 = 115), then held to 0..MAX_RULE_POINTS. A property that is
    missing or not a finite number awards nothing.
    """
    if rule.get("points"):
        return int(rule["points"])
    raw = properties.get(rule.get("points_property", ""))
    factor = rule.get("multiplier", 1)
    if not (_finite(raw) and _finite(factor)):
        return 0
    with localcontext(prec=100):
        try:
            exact = Decimal(repr(raw)) * Decimal(repr(factor))
        except InvalidOperation:
            return 0
        bounded = max(Decimal(0), min(Decimal(MAX_RULE_POINTS), exact))
        return int(bounded.to_integral_value(rounding=ROUND_FLOOR))


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


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

"""What a definition must mean beyond its JSON Schema, checked on the whole (merged) body.

The JSON Schema (schemas/json/definitions) holds each field to its type and range; these checks
relate fields to each other, so a definition that passes can always be evaluated by the engine:
a fixed challenge window starts before it ends, objective ids are unique, a
streak's time zone is a real IANA zone, an earn rule awards ``points`` or ``points_property``.
Dates arrive normalised (``YYYY-MM-DDTHH:MM:SSZ``), so comparing the strings compares instants.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Problem = dict[str, Any]


def problems(kind: str, body: dict[str, Any]) -> list[Problem]:
    """FastAPI-style ``{loc, msg, type}`` errors of a definition body; empty when it is sound."""
    check = CHECKS.get(kind)
    return check(body) if check else []


def _problem(loc: list[Any], msg: str) -> Problem:
    return {"loc": ["body", *loc], "msg": msg, "type": "value_error.definition"}


def _challenge(body: dict[str, Any]) -> list[Problem]:
    found: list[Problem] = []
    window = body.get("window") or {}
    if window.get("type") == "fixed":
        starts, ends = window.get("starts_at"), window.get("ends_at")
        if starts and ends and starts >= ends:
            found.append(_problem(["window", "ends_at"], "must be after starts_at"))
    seen: set[str] = set()
    for index, objective in enumerate(body.get("objectives") or []):
        if objective.get("id") in seen:
            found.append(_problem(["objectives", index, "id"], "objective ids must be unique"))
        seen.add(objective.get("id"))
    return found


def _streak(body: dict[str, Any]) -> list[Problem]:
    zone = body.get("timezone")
    if zone is None:
        return []
    try:
        ZoneInfo(str(zone))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return [_problem(["timezone"], f"unknown IANA time zone {zone!r}")]
    return []


def _rule(body: dict[str, Any]) -> list[Problem]:
    if body.get("points") is None and body.get("points_property") is None:
        return [_problem(["points"], "a rule needs points or points_property")]
    return []


CHECKS: dict[str, Callable[[dict[str, Any]], list[Problem]]] = {
    "challenge": _challenge,
    "streak": _streak,
    "rule": _rule,
}

"""HTTP endpoints of the challenges feature: a participant's challenges and their progress."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from services.api.keys import definition_queries_key
from services.api.middlewares import principal
from services.api.query_views import catalog, row_of
from services.api.requests import dumps
from services.participants.features import challenges
from services.validation import ValidationFailed

BASE = "/api/v1/gamify"
STATUSES = ("active", "completed")


async def participant_challenges(request: web.Request) -> web.Response:
    """Every active challenge (progress 0 if not joined), then joined ones no longer active."""
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        raise ValidationFailed(
            [
                {
                    "loc": ["query", "status"],
                    "msg": f"must be one of {', '.join(STATUSES)}",
                    "type": "value_error.enum",
                }
            ]
        )
    row = await row_of(request)
    cat = await catalog(request)
    now = datetime.now(UTC)
    states: dict[str, Any] = row.section("challenges", {})
    listed = [
        view(d["code"], d, states.get(d["code"], {}), now, active=True)
        for d in challenges.ordered(cat.challenges)
    ]
    active = {d["code"] for d in cat.challenges}
    for code in sorted(set(states) - active):
        definition = await _retired(request, code)
        if challenges.current(states[code], definition, now) is not None:
            listed.append(view(code, definition, states[code], now, active=False))
    if status == "completed":
        listed = [c for c in listed if c["is_completed"]]
    elif status == "active":
        listed = [c for c in listed if c["window"]["is_open"] and not c["is_completed"]]
    return web.json_response(
        {"participant_id": row.participant_id, "challenges": listed}, dumps=dumps
    )


async def _retired(request: web.Request, code: str) -> dict[str, Any] | None:
    """The definition of a challenge no longer active (soft-deleted), for its name and targets."""
    found = await asyncio.to_thread(
        request.app[definition_queries_key].by_code, principal(request).tenant, "challenge", code
    )
    return None if found is None else {**found.body, "id": found.id, "code": found.code}


def view(
    code: str,
    definition: dict[str, Any] | None,
    entry: dict[str, Any],
    now: datetime,
    *,
    active: bool,
) -> dict[str, Any]:
    """One challenge as the participant sees it in its current window."""
    joined = challenges.current(entry, definition, now)
    key = joined["window"] if joined else None
    counted = joined.get("progress", {}) if joined else {}
    completed_at = joined.get("completed_at") if joined else None
    objectives = _objectives(definition, counted, completed_at is not None)
    definition = definition or {}
    total = sum(o["target"] or 0 for o in objectives)
    done = sum(min(o["progress"], o["target"] or 0) for o in objectives)
    percent = 100 if completed_at else (100 * done // total if total else 0)
    return {
        "code": code,
        "name": definition.get("name"),
        "description": definition.get("description"),
        "window": _window(definition, key, now, active=active),
        "objectives": objectives,
        "progress_percent": percent,
        "joined": joined is not None,
        "is_active": active,
        "is_completed": completed_at is not None,
        "completed_at": completed_at,
    }


def _objectives(
    definition: dict[str, Any] | None, counted: dict[str, int], completed: bool
) -> list[dict[str, Any]]:
    if definition is None:  # definition gone: only the stored counts are known
        return [
            {
                "id": oid,
                "label": None,
                "event_name": None,
                "target": None,
                "progress": n,
                "complete": completed,
            }
            for oid, n in sorted(counted.items())
        ]
    listed = []
    for objective in definition["objectives"]:
        goal = challenges.target(objective)
        got = min(int(counted.get(objective["id"], 0)), goal)
        listed.append(
            {
                "id": objective["id"],
                "label": objective.get("label"),
                "event_name": objective["event_name"],
                "target": goal,
                "progress": got,
                "complete": completed or got >= goal,
            }
        )
    return listed


def _window(
    definition: dict[str, Any], key: str | None, now: datetime, *, active: bool
) -> dict[str, Any]:
    kind = challenges.window_type(definition)
    start, end = challenges.bounds(definition, key)
    return {
        "type": kind,
        "key": key,
        "days": challenges.rolling_days(definition) if kind == "rolling" else None,
        "starts_at": None if start is None else challenges.iso(start),
        "ends_at": None if end is None else challenges.iso(end),
        "is_open": active and challenges.is_open(definition, key, now),
    }


ROUTES: list[web.RouteDef] = [
    web.get(f"{BASE}/participants/{{participant_id}}/challenges", participant_challenges),
]

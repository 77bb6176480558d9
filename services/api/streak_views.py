"""HTTP endpoints of the streaks feature: record a tick, list a participant's streaks."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from services.api.keys import deps_key, queries_key
from services.api.query_views import catalog, row_of
from services.api.requests import clock, context, dumps, json_body
from services.participants.commands import from_body
from services.participants.features import streaks
from services.participants.handlers import execute

BASE = "/api/v1/gamify"


async def record_streak(request: web.Request) -> web.Response:
    body = await json_body(request, "streaks.record")
    ctx = context(request)  # ticks are deduplicated per period: no Idempotency-Key
    ctx = replace(ctx, idempotency_key=None)
    command = from_body("streaks.record", body)
    result = await execute(request.app[deps_key], ctx, command)
    extended = result.event("StreakExtended")
    if extended is not None:
        answer = {
            "new_count": extended["count"],
            "longest_count": extended["longest"],
            "is_new_record": extended["new_record"],
            "already_recorded": False,
            "freezes_used": extended["freezes_used"],
            "freezes_available": extended["freezes_available"],
        }
    else:  # the tick's period (or a later one) already counted: answer the stored streak
        answer = await _unchanged(request, ctx.tenant, command, body.get("timestamp"))
    return web.json_response({"streak_code": command.streak_code, **answer}, dumps=dumps)


async def _unchanged(
    request: web.Request, tenant: str, command: Any, timestamp: str | None
) -> dict[str, Any]:
    row = await asyncio.to_thread(
        request.app[queries_key].participant, tenant, command.participant_id
    )
    stored = (row.section("streaks", {}) if row else {}).get(command.streak_code, {})
    at = streaks.parse_instant(timestamp) if timestamp else clock(request)
    definition = (await catalog(request)).streaks.get(command.streak_code)
    status = streaks.status(command.streak_code, stored, definition, at)
    return {
        "new_count": int(stored.get("count") or 0),
        "longest_count": int(stored.get("longest") or 0),
        "is_new_record": False,
        "already_recorded": True,
        "freezes_used": 0,
        "freezes_available": status["freezes_available"],
    }


async def participant_streaks(request: web.Request) -> web.Response:
    row = await row_of(request)
    cat = await catalog(request)
    now = datetime.now(UTC)
    found = row.section("streaks", {})

    def order(code: str) -> tuple[int, int, str]:
        definition = cat.streaks.get(code)
        if definition is None:
            return (1, 0, code)
        return (0, int(definition.get("display_order") or 0), code)

    listed = [
        streaks.status(code, found[code], cat.streaks.get(code), now)
        for code in sorted(found, key=order)
    ]
    return web.json_response({"participant_id": row.participant_id, "streaks": listed}, dumps=dumps)


ROUTES: list[web.RouteDef] = [
    web.post(f"{BASE}/streaks/record", record_streak),
    web.get(f"{BASE}/participants/{{participant_id}}/streaks", participant_streaks),
]

"""HTTP endpoints of the leaderboards feature: the top N of a period, one participant's rank.

Reads only: they rank the scores read model (projections.leaderboards) by the metric of an
active leaderboard definition, for the period containing the current time (UTC).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from projections.leaderboards import PERIODS, default_period, metric_of
from services.api.errors import NotFound
from services.api.keys import definition_queries_key, leaderboard_queries_key, progress_key
from services.api.middlewares import principal
from services.api.requests import dumps, int_query, participant_id, path_id
from services.validation import ValidationFailed

BASE = "/api/v1/gamify"
KIND = "leaderboard"


async def get_leaderboard(request: web.Request) -> web.Response:
    limit = int_query(request, "limit", 20, 1, 100)
    wanted = _period(request)
    tenant = principal(request).tenant
    code, definition = await _definition(request, tenant)
    period = wanted or default_period(definition)
    # The projector positions this process knows: a batch projected since makes the cached
    # top N stale, so it keys the cache (see LeaderboardQueries.top).
    version = tuple(sorted(request.app[progress_key].known().items()))
    board = await asyncio.to_thread(
        request.app[leaderboard_queries_key].top,
        tenant,
        metric_of(definition),
        period,
        datetime.now(UTC),
        limit,
        version=version,
    )
    body = {
        "leaderboard_code": code,
        "period": board.period,
        "period_key": board.period_key,
        "entries": [
            {
                "rank": e.rank,
                "participant_id": e.participant_id,
                "score": e.score,
                "change": e.change,
            }
            for e in board.entries
        ],
        "total_participants": board.total,
    }
    return web.json_response(body, dumps=dumps)


async def get_rank(request: web.Request) -> web.Response:
    pid = participant_id(request)
    wanted = _period(request)
    tenant = principal(request).tenant
    code, definition = await _definition(request, tenant)
    period = wanted or default_period(definition)
    standing = await asyncio.to_thread(
        request.app[leaderboard_queries_key].standing,
        tenant,
        metric_of(definition),
        period,
        datetime.now(UTC),
        pid,
    )
    if standing is None:
        raise NotFound(f"Participant {pid} has no score on leaderboard {code} ({period})")
    body = {
        "participant_id": standing.participant_id,
        "rank": standing.rank,
        "score": standing.score,
        "total_participants": standing.total,
        "percentile": standing.percentile,
        "leaderboard_code": code,
        "period": standing.period,
        "period_key": standing.period_key,
    }
    return web.json_response(body, dumps=dumps)


async def _definition(request: web.Request, tenant: str) -> tuple[str, dict[str, Any]]:
    """The active leaderboard named in the path; NotFound if unknown or deleted."""
    code = path_id(request, "code", "definitions/leaderboard")
    row = await asyncio.to_thread(request.app[definition_queries_key].by_code, tenant, KIND, code)
    if row is None or not row.is_active:
        raise NotFound(f"Leaderboard not found: {code}")
    return row.code, row.body


def _period(request: web.Request) -> str | None:
    raw = request.query.get("period")
    if raw is None:
        return None
    if raw not in PERIODS:
        raise ValidationFailed(
            [
                {
                    "loc": ["query", "period"],
                    "msg": f"must be one of {', '.join(PERIODS)}",
                    "type": "value_error.enum",
                }
            ]
        )
    return raw


ROUTES: list[web.RouteDef] = [
    web.get(f"{BASE}/leaderboards/{{code}}", get_leaderboard),
    web.get(f"{BASE}/leaderboards/{{code}}/rank/{{participant_id}}", get_rank),
]

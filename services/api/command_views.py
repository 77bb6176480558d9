"""POST and PATCH handlers: parse, build the command, run it, answer from the read model."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiohttp import web

from services.api.engine_views import moved
from services.api.errors import NotFound
from services.api.keys import deps_key, queries_key
from services.api.query_views import catalog
from services.api.representations import profile
from services.api.requests import context, dumps, json_body, participant_id
from services.participants.commands import from_body
from services.participants.handlers import Result, execute


async def register_participant(request: web.Request) -> web.Response:
    body = await json_body(request, "participants.register")
    ctx = context(request, body)
    command = from_body("participants.register", body)
    await execute(request.app[deps_key], ctx, command)
    return await _profile_response(request, ctx.tenant, command.participant_id, 201)


async def update_participant(request: web.Request) -> web.Response:
    pid = participant_id(request)
    body = await json_body(request, "participants.update")
    ctx = context(request, body)
    command = from_body("participants.update", {**body, "participant_id": pid})
    await execute(request.app[deps_key], ctx, command)
    return await _profile_response(request, ctx.tenant, pid, 200)


async def award_points(request: web.Request) -> web.Response:
    body = await json_body(request, "points.award")
    ctx = context(request, body)
    command = from_body("points.award", body)
    result = await execute(request.app[deps_key], ctx, command)
    points = _points_moved(result, "PointsAwarded", command.participant_id)
    return _json({**points, **moved(result)}, result)


async def deduct_points(request: web.Request) -> web.Response:
    body = await json_body(request, "points.deduct")
    ctx = context(request, body)
    command = from_body("points.deduct", body)
    result = await execute(request.app[deps_key], ctx, command)
    return _json(_points_moved(result, "PointsDeducted", command.participant_id), result)


def _points_moved(result: Result, event_type: str, pid: str) -> dict[str, object]:
    data = result.event(event_type)
    if data is None:
        raise RuntimeError(f"{event_type} missing from the command's result")
    return {
        "transaction_id": data["transaction_id"],
        "participant_id": pid,
        "amount": data["amount"],
        "new_balance": data["balance_after"],
    }


def _json(body: dict[str, object], result: Result) -> web.Response:
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return web.json_response(body, headers=headers, dumps=dumps)


async def _profile_response(
    request: web.Request, tenant: str, pid: str, status: int
) -> web.Response:
    row = await asyncio.to_thread(request.app[queries_key].participant, tenant, pid)
    if row is None:
        raise NotFound(f"Participant not found: {pid}")
    body = profile(row, await catalog(request), datetime.now(UTC))
    return web.json_response(body, status=status, dumps=dumps)

"""POST and PATCH handlers: parse, build the command, run it, answer from the read model."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from services.api.batch import answer_batch
from services.api.engine_views import moved
from services.api.errors import NotFound
from services.api.keys import deps_key, queries_key
from services.api.query_views import catalog
from services.api.representations import created, profile
from services.api.requests import context, dumps, json_body, participant_id, replayed
from services.participants.commands import from_body
from services.participants.handlers import Context, Result, execute


async def register_participant(request: web.Request) -> web.Response:
    body = await json_body(request, "participants.register")
    ctx = context(request, body)
    command = from_body("participants.register", body)
    result = await execute(request.app[deps_key], ctx, command)
    answer = await _profile_response(request, ctx.tenant, command.participant_id, 201)
    return replayed(answer, result)


async def update_participant(request: web.Request) -> web.Response:
    pid = participant_id(request)
    body = await json_body(request, "participants.update")
    ctx = context(request, body)
    command = from_body("participants.update", {**body, "participant_id": pid})
    result = await execute(request.app[deps_key], ctx, command)
    return replayed(await _profile_response(request, ctx.tenant, pid, 200), result)


async def award_points(request: web.Request) -> web.Response:
    body = await json_body(request, "points.award")  # expires_at: UTC with Z (the boundary)
    ctx = context(request, body)
    command = from_body("points.award", body)
    result = await execute(request.app[deps_key], ctx, command)
    return _json(_award_answer(result, command.participant_id), result)


async def award_points_batch(request: web.Request) -> web.Response:
    """Up to 100 awards, each its own command and commit, with its own ``idempotency_key``.

    200 with one result per item (services.api.batch): a success carries POST /points/award's
    answer (plus ``replayed``), a failure the status and ``detail`` that request would answer.
    """

    async def run_item(ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        command = from_body("points.award", body)
        result = await execute(request.app[deps_key], ctx, command)
        return {**_award_answer(result, command.participant_id), "replayed": result.replayed}

    return await answer_batch(request, "awards", "points.award", run_item)


def _award_answer(result: Result, pid: str) -> dict[str, Any]:
    """POST /points/award's answer; ``amount`` is what was credited (after the tier multiplier:
    the PointsAwarded event records ``base_amount`` and ``multiplier``)."""
    return {**_points_moved(result, "PointsAwarded", pid), **moved(result)}


async def deduct_points(request: web.Request) -> web.Response:
    body = await json_body(request, "points.deduct")
    ctx = context(request, body)
    command = from_body("points.deduct", body)
    result = await execute(request.app[deps_key], ctx, command)
    return _json(_points_moved(result, "PointsDeducted", command.participant_id), result)


def _points_moved(result: Result, event_type: str, pid: str) -> dict[str, Any]:
    data = result.event(event_type)
    if data is None:
        raise RuntimeError(f"{event_type} missing from the command's result")
    return {
        "transaction_id": data["transaction_id"],
        "participant_id": pid,
        "amount": data["amount"],
        "new_balance": data["balance_after"],
    }


def _json(body: dict[str, Any], result: Result) -> web.Response:
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return web.json_response(body, headers=headers, dumps=dumps)


async def _profile_response(
    request: web.Request, tenant: str, pid: str, status: int
) -> web.Response:
    row = await asyncio.to_thread(request.app[queries_key].participant, tenant, pid)
    if row is None:
        raise NotFound(f"Participant not found: {pid}")
    shape = created if status == 201 else profile
    body = shape(row, await catalog(request), datetime.now(UTC))
    return web.json_response(body, status=status, dumps=dumps)

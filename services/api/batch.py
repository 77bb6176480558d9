"""Batches of independent commands (events, awards): one result per item, never one failure for all."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from aiohttp import web

from services.api.errors import ITEM_UNKNOWN_FAILURE, item_error
from services.api.requests import clock, context, dumps, json_body
from services.participants.handlers import Context
from services.validation import ValidationFailed, validate

MAX_BATCH = 100
MAX_ID = 255  # a failed item's participant_id is echoed only if it has an id's length

logger = logging.getLogger(__name__)

# Runs one validated item under its own context; answers the item's success fields.
RunItem = Callable[[Context, dict[str, Any]], Awaitable[dict[str, Any]]]


async def answer_batch(
    request: web.Request,
    field: str,
    command: str,
    run_item: RunItem,
) -> web.Response:
    """Run every item of ``body[field]`` as its own ``command``; 200 with a result per item.

    The answer is ``{"results": [...], "total", "succeeded", "failed"}``, results in request
    order. Only a request that is not a batch (body not a JSON object, ``field`` not a list of
    1 to 100, a malformed Idempotency-Key header) is refused as a whole (400/422).
    """
    body = await json_body(request, None)
    items = body.get(field)
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        raise ValidationFailed(
            [
                {
                    "loc": ["body", field],
                    "type": "value_error.list",
                    "msg": f"must be a list of 1 to {MAX_BATCH} {field}",
                }
            ]
        )
    context(request)  # a malformed Idempotency-Key header is the request's error, not each item's
    results = await asyncio.gather(
        *[_one(request, (field, command), i, item, run_item) for i, item in enumerate(items)]
    )
    ok = sum(1 for r in results if r["success"])
    return web.json_response(
        {"results": results, "total": len(results), "succeeded": ok, "failed": len(results) - ok},
        dumps=dumps,
    )


async def _one(
    request: web.Request,
    what: tuple[str, str],
    index: int,
    item: Any,
    run_item: RunItem,
) -> dict[str, Any]:
    """Run one item; every exception it raises becomes its result (never the batch's)."""
    field, command = what
    try:
        if not isinstance(item, dict):
            raise ValidationFailed(
                [{"loc": ["body", field, index], "msg": "must be an object", "type": "value_error"}]
            )
        where = f"{field}[{index}]"
        body = validate(command, item, now=clock(request), location=where)
        ctx = context(request, body)
        ctx = replace(ctx, idempotency_key=body.get("idempotency_key"))  # per item
        answer = await run_item(ctx, body)
    except Exception as exc:  # noqa: BLE001 - the item's answer, whatever went wrong
        return item_failure(request, index, item, exc)
    return {"index": index, "success": True, "participant_id": body["participant_id"], **answer}


def item_failure(request: web.Request, index: int, item: Any, exc: Exception) -> dict[str, Any]:
    """``status_code`` and ``error`` are the status and ``detail`` the single request would answer."""
    status, detail = item_error(exc)
    if detail is ITEM_UNKNOWN_FAILURE:
        logger.exception("batch item %d failed on %s", index, request.path, exc_info=exc)
    failure: dict[str, Any] = {"index": index, "success": False}
    pid = item.get("participant_id") if isinstance(item, dict) else None
    if isinstance(pid, str) and 1 <= len(pid) <= MAX_ID:
        failure["participant_id"] = pid
    return {**failure, "status_code": status, "error": detail}

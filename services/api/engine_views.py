"""Events, badges and tiers endpoints: commands through the engine, reads from read models."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

from aiohttp import web

from services.api import sections
from services.api.batch import answer_batch
from services.api.keys import deps_key, queries_key
from services.api.query_views import catalog, row_of
from services.api.requests import bool_query, context, dumps, int_query, json_body, replayed
from services.participants.commands import from_body
from services.participants.handlers import Context, Result, execute
from services.validation import check_field

MAX_BATCH = 100
MAX_ID = 255  # a failed item's participant_id is echoed only if it has an id's length

logger = logging.getLogger(__name__)


def moved(result: Result) -> dict[str, Any]:
    """What a command's consequences did, for any write response."""
    tier = result.event("TierChanged")
    return {
        "tier_upgrade": None
        if tier is None or tier["manual"]
        else {
            "code": tier["code"],
            "name": tier["name"],
            "level": tier["level"],
            "previous_code": tier["previous_code"],
            "previous_level": tier["previous_level"],
        },
        "badges_unlocked": [
            {"code": e["data"]["code"], "name": e["data"]["name"], "rarity": e["data"]["rarity"]}
            for e in result.events
            if e["type"] == "BadgeEarned"
        ],
    }


async def track_event(request: web.Request) -> web.Response:
    body = await json_body(request, "events.track")
    result = await execute(
        request.app[deps_key], context(request, body), from_body("events.track", body)
    )
    return replayed(web.json_response(_event_answer(result), dumps=dumps), result)


def _event_answer(result: Result) -> dict[str, Any]:
    tracked = result.event("EventTracked") or {}
    awarded = sum(e["data"]["amount"] for e in result.events if e["type"] == "PointsAwarded")
    return {
        "event_id": tracked.get("event_id"),
        "fact_id": result.commit_id,
        "status": "processed",
        "points_awarded": awarded,
        **moved(result),
    }


async def track_events(request: web.Request) -> web.Response:
    """Up to 100 events, each its own command: one item's failure is that item's result.

    Answers 200 with ``{"results": [...], "total", "succeeded", "failed"}`` (services.api.batch).
    """

    async def run_item(ctx: Context, body: dict[str, Any]) -> dict[str, Any]:
        result = await execute(request.app[deps_key], ctx, from_body("events.track", body))
        return _event_answer(result)

    return await answer_batch(request, "events", "events.track", run_item)


async def participant_events(request: web.Request) -> web.Response:
    row = await row_of(request)
    page = int_query(request, "page", 1, 1, 1_000_000)
    page_size = int_query(request, "page_size", 20, 1, 100)
    name = request.query.get("event_name") or None
    if name is not None:
        check_field("events.track", "event_name", name, ["query", "event_name"])
    found = await asyncio.to_thread(
        request.app[queries_key].events, row.tenant, row.participant_id, name, page, page_size
    )
    return web.json_response(
        {
            "participant_id": row.participant_id,
            "events": found.entries,
            "total": found.total,
            "page": page,
            "page_size": page_size,
        },
        dumps=dumps,
    )


async def award_badge(request: web.Request) -> web.Response:
    """The reference's answer: participant_id, badge_code, badge_name, icon, rarity, earned_at,
    already_earned (plus what the award moved: tier_upgrade, badges_unlocked)."""
    body = await json_body(request, "badges.award")
    ctx = context(request)  # natural key (participant, badge): no Idempotency-Key
    ctx = replace(ctx, idempotency_key=None)
    result = await execute(request.app[deps_key], ctx, from_body("badges.award", body))
    row = await asyncio.to_thread(
        request.app[queries_key].participant, ctx.tenant, body["participant_id"]
    )
    badge = (row.section("badges", {}) if row else {}).get(body["badge_code"], {})
    definition = next(
        (b for b in (await catalog(request)).badges if b["code"] == body["badge_code"]), {}
    )
    earned_now = result.event("BadgeEarned") is not None
    return web.json_response(
        {
            "participant_id": body["participant_id"],
            "badge_code": body["badge_code"],
            "badge_name": badge.get("name"),
            "icon": definition.get("icon_url"),
            "rarity": badge.get("rarity"),
            "earned_at": badge.get("earned_at"),
            "already_earned": not earned_now,
            **moved(result),
        },
        dumps=dumps,
    )


async def participant_badges(request: web.Request) -> web.Response:
    """``{participant_id, badges, total, earned_count}``; the counts are of the filtered list."""
    row = await row_of(request)
    listed = sections.all_badges(row, await catalog(request))
    if bool_query(request, "earned_only", False):
        listed = [b for b in listed if b["earned"]]
    codes = request.query.get("badge_codes")
    if codes:
        wanted = {c.strip() for c in codes.split(",") if c.strip()}
        listed = [b for b in listed if b["code"] in wanted]
    return web.json_response(
        {
            "participant_id": row.participant_id,
            "badges": listed,
            "total": len(listed),
            "earned_count": sum(1 for b in listed if b["earned"]),
        },
        dumps=dumps,
    )


async def assign_tier(request: web.Request) -> web.Response:
    body = await json_body(request, "tiers.assign")
    ctx = context(request, body)
    result = await execute(request.app[deps_key], ctx, from_body("tiers.assign", body))
    row = await asyncio.to_thread(
        request.app[queries_key].participant, ctx.tenant, body["participant_id"]
    )
    changed = result.event("TierChanged")
    answer = web.json_response(
        {
            "participant_id": body["participant_id"],
            "tier": sections.tier_brief(row) if row else None,
            "previous_tier": changed["previous_code"] if changed else None,
            "changed": changed is not None,
            "reason": changed.get("reason") if changed else None,
        },
        dumps=dumps,
    )
    return replayed(answer, result)


async def participant_tier(request: web.Request) -> web.Response:
    row = await row_of(request)
    cat = await catalog(request)
    history = await asyncio.to_thread(
        request.app[queries_key].tier_history, row.tenant, row.participant_id
    )
    return web.json_response(
        {
            "participant_id": row.participant_id,
            "lifetime_points": row.total_earned,
            "current_tier": sections.tier_current(row),
            "next_tier": sections.next_tier(row, cat),
            "pending_tier": sections.pending_tier(row, cat),
            "tier_history": history,
        },
        dumps=dumps,
    )

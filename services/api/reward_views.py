"""Rewards: the claimable catalog, claims (the saga of services/rewards), claims and stock reads."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from services.api.errors import Forbidden, NotFound
from services.api.keys import (
    definition_queries_key,
    deps_key,
    reward_queries_key,
    reward_stock_key,
)
from services.api.middlewares import principal
from services.api.query_views import catalog, row_of
from services.api.requests import context, dumps, int_query, json_body, path_id
from services.participants.commands import from_body
from services.participants.features.rewards import cap, expired, inventory
from services.rewards.handlers import claim_reward
from services.validation import ValidationFailed

BASE = "/api/v1/gamify"
REWARD_TYPES = ("coupon", "voucher", "physical", "digital", "points_multiplier")


async def list_rewards(request: web.Request) -> web.Response:
    """Active, unexpired rewards (optionally of one type) with the codes left in stock."""
    wanted = request.query.get("reward_type")
    if wanted is not None and wanted not in REWARD_TYPES:
        raise _invalid("query", "reward_type", f"must be one of: {', '.join(REWARD_TYPES)}")
    now = datetime.now(UTC)
    rewards = [
        r
        for r in (await catalog(request)).rewards.values()
        if not expired(r, now) and (wanted is None or r.get("type") == wanted)
    ]
    rewards.sort(key=lambda r: (r.get("display_order") is None, r.get("display_order") or 0))
    held = await asyncio.to_thread(
        request.app[reward_queries_key].reserved_codes,
        principal(request).tenant,
        [r["id"] for r in rewards if inventory(r) is not None],
    )
    body = [_listed(r, held.get(r["id"], set())) for r in rewards]
    return web.json_response({"rewards": body, "total": len(body)}, dumps=dumps)


def _listed(reward: dict[str, Any], held: set[str]) -> dict[str, Any]:
    return {
        "id": reward["id"],
        "name": reward.get("name"),
        "type": reward.get("type"),
        "description": reward.get("description"),
        "points_cost": reward.get("points_cost"),
        "available_codes": _available(reward, held),
        "max_claims_per_user": cap(reward),
        "expires_at": reward.get("expires_at"),
    }


def _available(reward: dict[str, Any], held: set[str]) -> int | None:
    codes = inventory(reward)
    return None if codes is None else sum(1 for c in codes if c not in held)


async def claim(request: web.Request) -> web.Response:
    reward_id = path_id(request, "reward_id", "rewards.claim")
    body = await json_body(request, "rewards.claim")
    if body.get("reward_id", reward_id) != reward_id:
        raise _invalid("body", "reward_id", "must match the reward_id of the path")
    ctx = context(request, body)
    command = from_body("rewards.claim", {**body, "reward_id": reward_id})
    done = await claim_reward(request.app[deps_key], request.app[reward_stock_key], ctx, command)
    headers = {"Idempotent-Replayed": "true"} if done.replayed else None
    return web.json_response(done.as_json(), headers=headers, dumps=dumps)


async def participant_rewards(request: web.Request) -> web.Response:
    row = await row_of(request)
    page = int_query(request, "page", 1, 1, 1_000_000)
    page_size = int_query(request, "page_size", 100, 1, 200)
    found = await asyncio.to_thread(
        request.app[reward_queries_key].claims, row.tenant, row.participant_id, page, page_size
    )
    return web.json_response(
        {"participant_id": row.participant_id, "rewards": found.entries, "total": found.total},
        dumps=dumps,
    )


async def reward_stock(request: web.Request) -> web.Response:
    """Admin: a reward's stock, and the codes held for claims that are not recorded (pending)."""
    if not principal(request).admin:
        raise Forbidden("This endpoint needs an API key with the admin scope")
    reward_id = path_id(request, "reward_id", "rewards.claim")
    tenant = principal(request).tenant
    queries = request.app[reward_queries_key]
    found = await asyncio.to_thread(
        request.app[definition_queries_key].by_id, tenant, "reward", reward_id
    )
    if found is None:
        raise NotFound(f"Reward not found: {reward_id}")
    reward = {**found.body, "id": found.id, "code": found.code}
    held = await asyncio.to_thread(queries.reserved_codes, tenant, [reward_id])
    pending = await asyncio.to_thread(queries.pending, tenant, reward_id)
    codes = inventory(reward)
    return web.json_response(
        {
            "reward_id": reward_id,
            "code": found.code,
            "total_codes": None if codes is None else len(codes),
            "available_codes": _available(reward, held.get(reward_id, set())),
            "reserved_codes": len(held.get(reward_id, set())),
            "pending": [
                {
                    "code_value": p.code_value,
                    "claim_id": p.claim_id,
                    "participant_id": p.participant_id,
                    "reserved_at": p.updated_at,
                }
                for p in pending
            ],
        },
        dumps=dumps,
    )


def _invalid(where: str, name: str, msg: str) -> ValidationFailed:
    return ValidationFailed([{"loc": [where, name], "msg": msg, "type": "value_error"}])


ROUTES: list[web.RouteDef] = [
    web.get(f"{BASE}/rewards", list_rewards),
    web.post(f"{BASE}/rewards/{{reward_id}}/claim", claim),
    web.get(f"{BASE}/participants/{{participant_id}}/rewards", participant_rewards),
    web.get(f"{BASE}/admin/rewards/{{reward_id}}/stock", reward_stock),
]

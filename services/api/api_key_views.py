"""Admin API for API keys: issue (the key shown once), list (never a key), revoke."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from aiohttp import web

from services.api.errors import Forbidden
from services.api.keys import api_key_queries_key, api_key_reader_key, deps_key
from services.api.middlewares import principal
from services.api.requests import context, dumps, int_query, json_body
from services.keys.domain import ApiKeyNotFound
from services.keys.handlers import issue_api_key, revoke_api_key
from services.participants.handlers import Context

PATH = "/api/v1/gamify/admin/api-keys"


def _tenant(request: web.Request) -> str:
    if not principal(request).admin:
        raise Forbidden("This endpoint needs an API key with the admin scope")
    return principal(request).tenant


async def create(request: web.Request) -> web.Response:
    """201 ``{id, key, prefix, name, scope, rate_limit, created_at}``; the key is never shown again.

    An Idempotency-Key is not honoured here: a retry could not show the key again, so it issues
    another one (revoke the unused one).
    """
    tenant = _tenant(request)
    body = await json_body(request, "api_keys.create")
    issued = await issue_api_key(
        request.app[deps_key],
        request.app[api_key_reader_key],
        _unkeyed(request),
        body["name"],
        body.get("scope", "standard"),
        body.get("rate_limit"),
    )
    row = await _row(request, tenant, issued.id)
    shown: dict[str, Any] = {"id": row["id"], "key": issued.key}
    shown.update({k: row[k] for k in ("prefix", "name", "scope", "rate_limit", "created_at")})
    return web.json_response(shown, status=201, dumps=dumps)


async def list_keys(request: web.Request) -> web.Response:
    tenant = _tenant(request)
    page = int_query(request, "page", 1, 1, 1_000_000)
    page_size = int_query(request, "page_size", 50, 1, 200)
    found = await asyncio.to_thread(request.app[api_key_queries_key].page, tenant, page, page_size)
    return web.json_response(
        {
            "api_keys": [k.as_json() for k in found.items],
            "total": found.total,
            "page": page,
            "page_size": page_size,
        },
        dumps=dumps,
    )


async def revoke(request: web.Request) -> web.Response:
    """200 with the revoked key's listing; every API process refuses the key from now on."""
    tenant = _tenant(request)
    id_ = request.match_info["id"]
    await revoke_api_key(
        request.app[deps_key], request.app[api_key_reader_key], _unkeyed(request), id_
    )
    return web.json_response(await _row(request, tenant, id_), dumps=dumps)


async def _row(request: web.Request, tenant: str, id_: str) -> dict[str, Any]:
    found = await asyncio.to_thread(request.app[api_key_queries_key].by_id, tenant, id_)
    if found is None:
        raise ApiKeyNotFound(id_)
    return found.as_json()


def _unkeyed(request: web.Request) -> Context:
    """The command context without an idempotency key (revoking is idempotent by itself)."""
    return replace(context(request), idempotency_key=None, fingerprint=None)


ROUTES = [
    web.post(PATH, create),
    web.get(PATH, list_keys),
    web.delete(f"{PATH}/{{id}}", revoke),
]

"""Admin API of webhook subscriptions (/admin/webhooks) and their deliveries; admin scope.

Subscriptions are definitions of kind ``webhook`` on the log (paging, soft delete and replay
as for the others); the secret is shown once, in the answer to POST, never by GET.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from aiohttp import web

from projections.webhooks.outbox import CANCELLED, DELIVERED, FAILED, PENDING
from services.api.errors import Forbidden, NotFound
from services.api.keys import (
    definition_queries_key,
    definition_reader_key,
    deps_key,
    settings_key,
    webhook_outbox_key,
)
from services.api.middlewares import principal
from services.api.requests import (
    clock,
    context,
    dumps,
    int_query,
    issued_id,
    json_body,
    optional_bool_query,
)
from services.definitions.domain import WEBHOOK, DefinitionNotFound
from services.definitions.handlers import change_definition, create_definition
from services.validation import ValidationFailed, validate
from services.webhooks.addresses import RefusedAddress, check_url

STATUSES = (PENDING, DELIVERED, FAILED, CANCELLED)
BASE = "/api/v1/gamify/admin/webhooks"


def _admin(request: web.Request) -> str:
    if not principal(request).admin:
        raise Forbidden("This endpoint needs an API key with the admin scope")
    return principal(request).tenant


def _checked(request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
    """The URL must be http(s) and, unless allowed, not a loopback/private address (422)."""
    if "url" in body:
        allow = request.app[settings_key].webhooks.allow_private
        try:
            check_url(body["url"], allow_private=allow)
        except RefusedAddress as exc:
            raise ValidationFailed(
                [{"loc": ["body", "url"], "msg": str(exc), "type": "value_error.url"}]
            ) from None
    return body


def shown(found: Any) -> dict[str, Any]:
    """A subscription as the API shows it: without its secret (and without the internal code)."""
    body = found.as_json()
    body.pop("secret", None)
    body.pop("code", None)
    return body


async def create(request: web.Request) -> web.Response:
    _admin(request)
    body = _checked(
        request,
        validate(f"definitions/{WEBHOOK}", await json_body(request, None), now=clock(request)),
    )
    secret = body.get("secret") or f"whsec_{secrets.token_hex(24)}"
    deps = request.app[deps_key]
    new_id = deps.new_id()
    await create_definition(
        deps,
        request.app[definition_reader_key],
        context(request),
        WEBHOOK,
        {**body, "secret": secret, "code": new_id},
        new_id,
    )
    answer = shown(await _found(request, new_id))
    return web.json_response({**answer, "secret": secret}, status=201, dumps=dumps)


async def list_webhooks(request: web.Request) -> web.Response:
    tenant = _admin(request)
    page = int_query(request, "page", 1, 1, 1_000_000)
    page_size = int_query(request, "page_size", 50, 1, 200)
    is_active = optional_bool_query(request, "is_active")
    found = await asyncio.to_thread(
        request.app[definition_queries_key].page,
        tenant,
        WEBHOOK,
        page,
        page_size,
        is_active,
    )
    return web.json_response(
        {
            "webhooks": [shown(d) for d in found.items],
            "total": found.total,
            "page": page,
            "page_size": page_size,
        },
        dumps=dumps,
    )


async def get_webhook(request: web.Request) -> web.Response:
    _admin(request)
    return web.json_response(shown(await _found(request)), dumps=dumps)


async def update(request: web.Request) -> web.Response:
    _admin(request)
    changes = _checked(
        request,
        validate(
            f"definitions/{WEBHOOK}",
            await json_body(request, None),
            now=clock(request),
            partial=True,
        ),
    )
    return await _change(request, changes)


async def delete(request: web.Request) -> web.Response:
    _admin(request)
    return await _change(request, None)


async def _change(request: web.Request, changes: dict[str, Any] | None) -> web.Response:
    """Apply ``changes`` to the path's subscription (None: soft delete); 200 with it, no secret."""
    found = await _found(request)
    await change_definition(
        request.app[deps_key],
        request.app[definition_reader_key],
        context(request),
        WEBHOOK,
        found.id,
        changes,
    )
    return web.json_response(shown(await _found(request, found.id)), dumps=dumps)


async def deliveries(request: web.Request) -> web.Response:
    """A subscription's deliveries, newest first; ``status`` filters."""
    tenant = _admin(request)
    found = await _found(request)
    page = int_query(request, "page", 1, 1, 1_000_000)
    page_size = int_query(request, "page_size", 50, 1, 200)
    status = request.query.get("status")
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
    items, total = await asyncio.to_thread(
        request.app[webhook_outbox_key].page, tenant, found.id, status, page, page_size
    )
    return web.json_response(
        {
            "deliveries": [d.as_json() for d in items],
            "total": total,
            "page": page,
            "page_size": page_size,
        },
        dumps=dumps,
    )


async def redeliver(request: web.Request) -> web.Response:
    """Queue a delivery again (due now, attempts from zero): 202 with the delivery."""
    tenant = _admin(request)
    found = await _found(request)
    outbox = request.app[webhook_outbox_key]
    ident = issued_id(request, "delivery_id")
    if not await asyncio.to_thread(outbox.redeliver, tenant, found.id, ident, time.time()):
        raise NotFound(f"Delivery not found: {ident}")
    delivery = await asyncio.to_thread(outbox.get, tenant, found.id, ident)
    assert delivery is not None
    return web.json_response(delivery.as_json(), status=202, dumps=dumps)


async def _found(request: web.Request, id_: str | None = None) -> Any:
    ident = id_ or issued_id(request, "webhook_id")
    found = await asyncio.to_thread(
        request.app[definition_queries_key].by_id, principal(request).tenant, WEBHOOK, ident
    )
    if found is None:
        raise DefinitionNotFound(WEBHOOK, ident)
    return found


ROUTES = [
    web.get(BASE, list_webhooks),
    web.post(BASE, create),
    web.get(f"{BASE}/{{webhook_id}}", get_webhook),
    web.patch(f"{BASE}/{{webhook_id}}", update),
    web.delete(f"{BASE}/{{webhook_id}}", delete),
    web.get(f"{BASE}/{{webhook_id}}/deliveries", deliveries),
    web.post(f"{BASE}/{{webhook_id}}/deliveries/{{delivery_id}}/redeliver", redeliver),
]

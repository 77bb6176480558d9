"""Admin API: definitions of every kind under /admin/{resource}; needs a key with the admin scope."""

from __future__ import annotations

import asyncio

from aiohttp import web

from services.api.errors import Forbidden, NotFound
from services.api.keys import (
    definition_queries_key,
    definition_reader_key,
    deps_key,
    queries_key,
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
from services.definitions.domain import KINDS, DefinitionNotFound
from services.definitions.handlers import change_definition, create_definition
from services.participants.domain import Refused
from services.participants.evaluate import Candidate, evaluate_definition
from services.participants.features.evaluation import EVALUATED_KINDS, unevaluable
from services.participants.features.tiers import min_points
from services.validation import validate

SCAN_PAGE = 500  # participants read per page while evaluating


def _kind(request: web.Request) -> str:
    if not principal(request).admin:
        raise Forbidden("This endpoint needs an API key with the admin scope")
    resource = request.match_info["resource"]
    if resource not in KINDS:
        raise NotFound(f"Unknown admin resource: {resource}")
    return KINDS[resource]


async def list_definitions(request: web.Request) -> web.Response:
    kind = _kind(request)
    page = int_query(request, "page", 1, 1, 1_000_000)
    page_size = int_query(request, "page_size", 50, 1, 200)
    is_active = optional_bool_query(request, "is_active")
    found = await asyncio.to_thread(
        request.app[definition_queries_key].page,
        principal(request).tenant,
        kind,
        page,
        page_size,
        is_active,
    )
    return web.json_response(
        {
            request.match_info["resource"]: [d.as_json() for d in found.items],
            "total": found.total,
            "page": page,
            "page_size": page_size,
        },
        dumps=dumps,
    )


async def create(request: web.Request) -> web.Response:
    kind = _kind(request)
    body = validate(f"definitions/{kind}", await json_body(request, None), now=clock(request))
    ctx = context(request)
    new_id = await create_definition(
        request.app[deps_key], request.app[definition_reader_key], ctx, kind, body
    )
    return await _definition_response(request, kind, new_id, 201)


async def _resolve(request: web.Request, kind: str) -> str:
    """The id of the definition the path names, by id or else by code (404 if neither)."""
    ref = issued_id(request, "id")
    found = await asyncio.to_thread(
        request.app[definition_queries_key].by_id_or_code, principal(request).tenant, kind, ref
    )
    if found is None:
        raise DefinitionNotFound(kind, ref)
    return found.id


async def get_definition(request: web.Request) -> web.Response:
    kind = _kind(request)
    return await _definition_response(request, kind, await _resolve(request, kind), 200)


async def update(request: web.Request) -> web.Response:
    kind = _kind(request)
    raw = await json_body(request, None)
    changes = validate(f"definitions/{kind}", raw, now=clock(request), partial=True)
    id_ = await _resolve(request, kind)
    await change_definition(
        request.app[deps_key],
        request.app[definition_reader_key],
        context(request),
        kind,
        id_,
        changes,
    )
    return await _definition_response(request, kind, id_, 200)


async def delete(request: web.Request) -> web.Response:
    kind = _kind(request)
    id_ = await _resolve(request, kind)
    await change_definition(
        request.app[deps_key], request.app[definition_reader_key], context(request), kind, id_, None
    )
    return await _definition_response(request, kind, id_, 200)


async def evaluate(request: web.Request) -> web.Response:
    """POST /admin/{tiers|badges}/{id}/evaluate: give it to every participant who qualifies now.

    Synchronous: answers 200 once every participant was scanned, with what was done
    (services.participants.evaluate.Summary). Idempotent per definition version; a request cut
    short can simply be repeated: done participants replay, the rest are evaluated.
    """
    kind = _kind(request)
    if kind not in EVALUATED_KINDS:
        raise NotFound(f"Only tiers and badges are evaluated, not {request.match_info['resource']}")
    found = await asyncio.to_thread(
        request.app[definition_queries_key].by_id,
        principal(request).tenant,
        kind,
        await _resolve(request, kind),
    )
    if found is None:
        raise DefinitionNotFound(kind, request.match_info["id"])
    definition = {**found.body, "id": found.id, "code": found.code}
    why = unevaluable(kind, definition, found.is_active)
    if why is not None:
        raise Refused(why)
    ctx = context(request)
    floor = min_points(definition) if kind == "tier" else 0
    queries = request.app[queries_key]

    async def pages(after: str | None) -> list[Candidate]:
        rows = await asyncio.to_thread(queries.scan, ctx.tenant, after, SCAN_PAGE, floor)
        return [Candidate(r.participant_id, r.total_earned, r.sections) for r in rows]

    summary = await evaluate_definition(
        request.app[deps_key], ctx, kind, definition, found.version, pages
    )
    body = {"kind": kind, "id": found.id, "code": found.code, "version": found.version}
    return web.json_response({**body, **summary.as_json()}, dumps=dumps)


async def _definition_response(
    request: web.Request, kind: str, id_: str, status: int
) -> web.Response:
    found = await asyncio.to_thread(
        request.app[definition_queries_key].by_id, principal(request).tenant, kind, id_
    )
    if found is None:
        raise DefinitionNotFound(kind, id_)
    return web.json_response(found.as_json(), status=status, dumps=dumps)

"""GET handlers: read the read models, shape the JSON; they never touch the log."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiohttp import web

from projections.participants.queries import ParticipantRow
from services.api.errors import NotFound
from services.api.keys import deps_key, queries_key
from services.api.middlewares import principal
from services.api.past_views import as_of, then
from services.api.representations import (
    STATE_SECTIONS,
    expiring_soon,
    points,
    profile,
    state,
)
from services.api.requests import dumps, int_query, json_answer, participant_id
from services.participants.engine import Catalog
from services.validation import ValidationFailed


async def get_participant(request: web.Request) -> web.Response:
    row, cat, now = await _view(request)
    return json_answer(profile(row, cat, now))


async def get_state(request: web.Request) -> web.Response:
    include = _include(request.query.get("include") if request.query_string else None)
    row, cat, now = await _view(request)
    return json_answer(state(row, include, cat, now))


async def _view(request: web.Request) -> tuple[ParticipantRow, Catalog, datetime]:
    """The row, definitions and "now" to render: the present, or the past with ``?as_of=``."""
    moment = as_of(request)
    if moment is not None:
        row, cat = await then(request, moment)
        return row, cat, moment
    row = await _row(request)
    return row, await catalog(request), datetime.now(UTC)


async def catalog(request: web.Request) -> Catalog:
    """The tenant's active definitions (next tier, unearned badges, streak rules ...)."""
    return await request.app[deps_key].reader.get_catalog(principal(request).tenant, cached=True)


async def get_points(request: web.Request) -> web.Response:
    row = await _row(request)
    body = {
        "participant_id": row.participant_id,
        **points(row),
        "expiring_soon": expiring_soon(row),
    }
    return json_answer(body)


async def get_transactions(request: web.Request) -> web.Response:
    row = await _row(request)
    page = int_query(request, "page", 1, 1, 1_000_000)
    page_size = int_query(request, "page_size", 20, 1, 100)
    found = await asyncio.to_thread(
        request.app[queries_key].transactions, row.tenant, row.participant_id, page, page_size
    )
    return web.json_response(
        {
            "participant_id": row.participant_id,
            "transactions": found.entries,
            "total": found.total,
            "page": page,
            "page_size": page_size,
        },
        dumps=dumps,
    )


async def row_of(request: web.Request) -> ParticipantRow:
    """The participant named in the path, for the key's tenant; NotFound if unknown."""
    return await _row(request)


async def _row(request: web.Request) -> ParticipantRow:
    pid = participant_id(request)
    tenant = principal(request).tenant
    queries = request.app[queries_key]
    if queries.inline:  # a SQLite primary-key read: cheaper than the thread hop around it
        row = queries.participant_inline(tenant, pid)
    else:
        row = await asyncio.to_thread(queries.participant, tenant, pid)
    if row is None:
        raise NotFound(f"Participant not found: {pid}")
    return row


def _include(raw: str | None) -> tuple[str, ...]:
    if raw is None or not raw.strip():
        return STATE_SECTIONS
    wanted = tuple(s.strip() for s in raw.split(",") if s.strip())
    if not wanted:  # only commas and blanks: as if absent
        return STATE_SECTIONS
    unknown = [s for s in wanted if s not in STATE_SECTIONS]
    if unknown:
        raise ValidationFailed(
            [
                {
                    "loc": ["query", "include"],
                    "msg": f"unknown section(s) {', '.join(unknown)}; options: {', '.join(STATE_SECTIONS)}",
                    "type": "value_error.include",
                }
            ]
        )
    return wanted

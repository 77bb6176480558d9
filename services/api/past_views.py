"""The past over HTTP: ``?as_of=`` on the profile and the state, and a participant's history.

``as_of`` is a moment (``YYYY-MM-DDTHH:MM:SS``, optional fraction, ``Z`` or ``±HH:MM``, none
meaning UTC; parsed by the boundary's ``services.validation.parse_timestamp``, so an offset
names the same instant in UTC, to the second). The answer is the one the live endpoint gave
at that moment: the participant's commits recorded (``recorded_at``) at or before it, folded
with the projector's fold, rendered against the definitions as they stood then, with that
moment as "now". See projections/past.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from projections.participants.queries import ParticipantRow
from projections.past import HistoryEntry, definitions_as_of, history, participant_as_of
from schemas.codec import encode_event
from services.api.errors import Forbidden, NotFound
from services.api.keys import log_reader_key, past_queries_key
from services.api.middlewares import principal
from services.api.requests import dumps, int_query, participant_id
from services.participants.engine import Catalog
from services.validation import ValidationFailed, format_timestamp, parse_timestamp


def as_of(request: web.Request) -> datetime | None:
    """The ``as_of`` query parameter as a UTC instant, None when absent; 422 when malformed."""
    if not request.query_string:  # most reads: no query to parse
        return None
    raw = request.query.get("as_of")
    if raw is None:
        return None
    moment = parse_timestamp(raw)
    if moment is None:
        raise ValidationFailed(
            [
                {
                    "loc": ["query", "as_of"],
                    "msg": "must be an ISO-8601 date-time, YYYY-MM-DDTHH:MM:SS with Z or ±HH:MM "
                    "(none means UTC)",
                    "type": "value_error.datetime",
                }
            ]
        )
    return moment


async def then(request: web.Request, moment: datetime) -> tuple[ParticipantRow, Catalog]:
    """The participant and the tenant's definitions as they were at ``moment``; NotFound if
    the participant did not exist then."""
    pid = participant_id(request)
    tenant = principal(request).tenant
    queries, log = request.app[past_queries_key], request.app[log_reader_key]
    at = format_timestamp(moment)
    row = await participant_as_of(queries, log, tenant, pid, at)  # type: ignore[arg-type]
    if row is None:
        raise NotFound(f"Participant not found as of {at}: {pid}")
    definitions = await definitions_as_of(queries, log, tenant, at)  # type: ignore[arg-type]
    return row, Catalog.of((d.kind, d.id, d.code, d.body) for d in definitions)


async def get_history(request: web.Request) -> web.Response:
    """The participant's commits, newest first: verdict, position, causation and events.

    Admin scope only: it shows every request's causation (request ids, idempotency keys,
    inbound positions), which is support staff's business, not a client application's.
    """
    if not principal(request).admin:
        raise Forbidden("This endpoint needs an API key with the admin scope")
    pid = participant_id(request)
    page = int_query(request, "page", 1, 1, 1_000_000)
    page_size = int_query(request, "page_size", 20, 1, 100)
    entries, total = await history(
        request.app[past_queries_key],
        request.app[log_reader_key],  # type: ignore[arg-type]
        principal(request).tenant,
        pid,
        page,
        page_size,
    )
    if total == 0:
        raise NotFound(f"Participant not found: {pid}")
    return web.json_response(
        {
            "participant_id": pid,
            "commits": [_entry(e) for e in entries],
            "total": total,
            "page": page,
            "page_size": page_size,
        },
        dumps=dumps,
    )


def _entry(entry: HistoryEntry) -> dict[str, Any]:
    at, commit = entry.position, entry.commit
    found: dict[str, Any] = {
        "commit_id": at.commit_id,
        "status": at.status,
        "position": {"partition": at.partition, "offset": at.offset},
    }
    if commit is None:  # not readable any more (retention) or never decodable (quarantined)
        return {**found, "version": None, "recorded_at": None, "causation": None, "events": []}
    causation = commit.causation
    return {
        **found,
        "version": commit.expected_version + 1
        if at.status == "applied" and commit.events
        else None,
        "recorded_at": commit.recorded_at,
        "causation": {
            "command": causation.command,
            "source": causation.source,
            "request_id": causation.request_id,
            "idempotency_key": causation.idempotency_key,
            "input": causation.input,
        },
        "events": [encode_event(e) for e in commit.events],
    }

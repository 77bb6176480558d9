"""GET /admin/participants: the tenant's participants with search, filters, sort and pages.

Served from the participant read model (projections/participants/listing.py); admin scope.
Query parameters and their rules: docs/admin-participants.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiohttp import web

from projections.participants.queries import ParticipantListing, ParticipantRow
from services.api import sections
from services.api.errors import Forbidden
from services.api.keys import queries_key
from services.api.middlewares import principal
from services.api.representations import points
from services.api.requests import dumps, int_query, optional_bool_query
from services.validation import CONTROL, ValidationFailed

PATH = "/api/v1/gamify/admin/participants"
SORTS = ("first_seen_at", "created_at", "last_seen_at", "balance", "total_earned", "participant_id")
ORDERS = ("asc", "desc")
ATTRIBUTE = "attribute."
MAX_ATTRIBUTE_FILTERS = 10
MAX_TEXT = 255  # search, tier code and attribute key (the longest id, name or key)
MAX_VALUE = 8192  # attribute value (the size bound of all attributes as JSON)
MAX_PAGE_SIZE = 200  # as the other admin lists


async def list_participants(request: web.Request) -> web.Response:
    """200 ``{participants: [item], total, page, page_size}``; item: ``listed``."""
    if not principal(request).admin:
        raise Forbidden("This endpoint needs an API key with the admin scope")
    spec = listing(request)
    found = await asyncio.to_thread(
        request.app[queries_key].listing, principal(request).tenant, spec
    )
    return web.json_response(
        {
            "participants": [listed(r) for r in found.rows],
            "total": found.total,
            "page": spec.page,
            "page_size": spec.page_size,
        },
        dumps=dumps,
    )


def listed(row: ParticipantRow) -> dict[str, Any]:
    """One participant of the list: the profile's fields that need no definitions."""
    return {
        "participant_id": row.participant_id,
        "display_name": row.display_name,
        "avatar_url": row.avatar_url,
        "attributes": row.attributes,
        "points": points(row),
        "tier": sections.tier_brief(row),
        "rewards_claimed": row.rewards_claimed,
        "total_events": row.total_events,
        "first_seen_at": row.created_at,
        "last_seen_at": row.last_seen_at,
        "is_active": row.is_active,
    }


def listing(request: web.Request) -> ParticipantListing:
    """The query's listing, or ValidationFailed (422) naming every bad parameter."""
    errors: list[dict[str, Any]] = []

    def read(parse: Callable[[], Any]) -> Any:
        try:
            return parse()
        except ValidationFailed as exc:
            errors.extend(exc.errors)
            return None

    query = request.query
    spec = ParticipantListing(
        search=read(lambda: _text(query.get("search"), "search", MAX_TEXT)),
        is_active=read(lambda: optional_bool_query(request, "is_active")),
        tier=read(lambda: _text(query.get("tier"), "tier", MAX_TEXT)),
        attributes=read(lambda: _attributes(request)) or (),
        sort=read(lambda: _choice(query.get("sort"), "sort", SORTS)) or "first_seen_at",
        descending=read(lambda: _choice(query.get("order"), "order", ORDERS)) != "asc",
        page=read(lambda: int_query(request, "page", 1, 1, 1_000_000)) or 1,
        page_size=read(lambda: int_query(request, "page_size", 50, 1, MAX_PAGE_SIZE)) or 50,
    )
    if errors:
        raise ValidationFailed(errors)
    return spec


def _attributes(request: web.Request) -> tuple[tuple[str, str], ...]:
    found = []
    for name, value in request.query.items():
        if name.startswith(ATTRIBUTE):
            key = _text(name.removeprefix(ATTRIBUTE), name, MAX_TEXT)
            if key is None:
                raise _invalid(name, "names no attribute (attribute.<key>=<value>)", "missing")
            found.append((key, _text(value, name, MAX_VALUE, empty=True) or ""))
    if len(found) > MAX_ATTRIBUTE_FILTERS:
        raise _invalid("attribute", f"at most {MAX_ATTRIBUTE_FILTERS} filters", "too_many")
    return tuple(found)


def _text(raw: str | None, name: str, longest: int, *, empty: bool = False) -> str | None:
    """``raw`` if it has no control characters and at most ``longest`` characters.

    Absent or empty: None (no filter), unless ``empty`` (then "" is a value).
    """
    if raw is None or (raw == "" and not empty):
        return None
    if len(raw) > longest:
        raise _invalid(name, f"at most {longest} characters", "max_length")
    if CONTROL.search(raw):
        raise _invalid(name, "must not contain control characters", "control")
    return raw


def _choice(raw: str | None, name: str, allowed: tuple[str, ...]) -> str | None:
    if raw is None or raw == "":
        return None
    if raw not in allowed:
        raise _invalid(name, f"must be one of {', '.join(allowed)}", "enum")
    return raw


def _invalid(name: str, msg: str, kind: str) -> ValidationFailed:
    return ValidationFailed([{"loc": ["query", name], "msg": msg, "type": f"value_error.{kind}"}])


ROUTES = [web.get(PATH, list_participants)]

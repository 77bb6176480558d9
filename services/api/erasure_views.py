"""DELETE /admin/participants/{participant_id}: erase a participant (crypto-shredding)."""

from __future__ import annotations

from aiohttp import web

from services.api.access import request_id
from services.api.errors import Forbidden
from services.api.keys import data_keys_key, deps_key
from services.api.middlewares import principal
from services.api.requests import participant_id
from services.participants.erasure import erase_participant
from services.participants.handlers import Context


async def erase(request: web.Request) -> web.Response:
    """204 once the participant's personal data is erased (also when it already was); 404 for
    a participant that never existed; 422 for an id off the participant_id rule; admin scope.
    docs/erasure.md says what remains."""
    who = principal(request)
    if not who.admin:
        raise Forbidden("This endpoint needs an API key with the admin scope")
    ctx = Context(tenant=who.tenant, source="admin", request_id=request_id(request))
    await erase_participant(
        request.app[deps_key],
        request.app[data_keys_key],
        ctx,
        participant_id(request),  # held to the participant_id rule (422), as GET and PATCH
    )
    return web.Response(status=204)


ROUTES = [web.delete("/api/v1/gamify/admin/participants/{participant_id}", erase)]

"""The API's own description: the OpenAPI document, served without a key."""

from __future__ import annotations

from aiohttp import web

from services.api.openapi import document_bytes

BASE = "/api/v1/gamify"
OPENAPI_PATH = f"{BASE}/openapi.json"


async def openapi(request: web.Request) -> web.Response:
    """The document built from services/api/openapi.skeleton.json and schemas/json (cached)."""
    return web.Response(body=document_bytes(), content_type="application/json")


async def build_document(app: web.Application) -> None:
    """Build the document at start-up, so a skeleton naming an unknown schema stops the app."""
    document_bytes()


ROUTES: list[web.RouteDef] = [
    web.get(OPENAPI_PATH, openapi),
]

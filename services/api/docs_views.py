"""The API's own description: the OpenAPI document, served without a key."""

from __future__ import annotations

from functools import cache

from aiohttp import web

from services.api.openapi import document_bytes

BASE = "/api/v1/gamify"
OPENAPI_PATH = f"{BASE}/openapi.json"


@cache
def openapi_document() -> bytes:
    """The document built from services/api/openapi.skeleton.json and schemas/json, once."""
    return document_bytes()


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=openapi_document(), content_type="application/json")


async def build_document(app: web.Application) -> None:
    """Build the document at start-up, so a skeleton naming an unknown schema stops the app."""
    openapi_document()


ROUTES: list[web.RouteDef] = [
    web.get(OPENAPI_PATH, openapi),
]

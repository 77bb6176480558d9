"""The API's own description: the OpenAPI document, served without a key."""

from __future__ import annotations

import importlib.resources
from functools import cache

from aiohttp import web

BASE = "/api/v1/gamify"
OPENAPI_PATH = f"{BASE}/openapi.json"


@cache
def openapi_document() -> bytes:
    """The bytes of services/api/openapi.json (package data), read once."""
    return importlib.resources.files("services.api").joinpath("openapi.json").read_bytes()


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=openapi_document(), content_type="application/json")


ROUTES: list[web.RouteDef] = [
    web.get(OPENAPI_PATH, openapi),
]

"""The API's own description: the OpenAPI document and a Swagger UI page on it, served without a key.

The page's assets come from the ``swagger-ui-bundle-v2`` package (Swagger UI 5, which reads
OpenAPI 3.1), so it works on machines with no internet: nothing is loaded from a CDN.
"""

from __future__ import annotations

from functools import cache

from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

from services.api.errors import error
from services.api.openapi import document_bytes

BASE = "/api/v1/gamify"
OPENAPI_PATH = f"{BASE}/openapi.json"
DOCS_PATH = f"{BASE}/docs"

# The Swagger UI files the page loads, with their content types; nothing else is served.
ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}

PAGE = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Gamify API</title>
  <link rel="stylesheet" type="text/css" href="{DOCS_PATH}/swagger-ui.css">
  <link rel="icon" type="image/png" href="{DOCS_PATH}/favicon-32x32.png" sizes="32x32">
  <link rel="icon" type="image/png" href="{DOCS_PATH}/favicon-16x16.png" sizes="16x16">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{DOCS_PATH}/swagger-ui-bundle.js" charset="utf-8"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "{OPENAPI_PATH}",
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: true,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout"
    }});
  </script>
</body>
</html>
"""


@cache
def openapi_document() -> bytes:
    """The document built from services/api/openapi.skeleton.json and schemas/json, once."""
    return document_bytes()


@cache
def asset(name: str) -> bytes:
    """One Swagger UI file from the installed bundle, read once."""
    return swagger_ui_path.joinpath(name).read_bytes()


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=openapi_document(), content_type="application/json")


async def docs_page(request: web.Request) -> web.Response:
    """GET /api/v1/gamify/docs: Swagger UI on the OpenAPI document (HTML)."""
    return web.Response(text=PAGE, content_type="text/html")


async def docs_asset(request: web.Request) -> web.Response:
    """GET /api/v1/gamify/docs/{name}: one of ASSETS (404 for any other name)."""
    name = request.match_info["name"]
    if name not in ASSETS:
        return error(404, "Not Found")
    return web.Response(
        body=asset(name),
        content_type=ASSETS[name],
        headers={"Cache-Control": "public, max-age=86400"},
    )


async def build_document(app: web.Application) -> None:
    """Build the document at start-up, so a skeleton naming an unknown schema stops the app."""
    openapi_document()


ROUTES: list[web.RouteDef] = [
    web.get(OPENAPI_PATH, openapi),
    web.get(DOCS_PATH, docs_page),
    web.get(f"{DOCS_PATH}/{{name}}", docs_asset),
]

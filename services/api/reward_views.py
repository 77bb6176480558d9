"""HTTP endpoints of the rewards feature (to be built)."""

from __future__ import annotations

from aiohttp import web

ROUTES: list[web.RouteDef] = []

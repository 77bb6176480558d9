"""HTTP endpoints of the streaks feature (to be built)."""

from __future__ import annotations

from aiohttp import web

ROUTES: list[web.RouteDef] = []

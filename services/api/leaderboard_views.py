"""HTTP endpoints of the leaderboards feature (to be built)."""

from __future__ import annotations

from aiohttp import web

ROUTES: list[web.RouteDef] = []

"""The API-key handlers' ApiKeyReader port over the api_keys read model."""

from __future__ import annotations

import asyncio

from projections.api_keys.queries import ApiKeyQueries
from services.keys.domain import ApiKeyState


class ApiKeyStateReader:
    """Runs the synchronous queries in a worker thread and maps rows to ApiKeyState."""

    def __init__(self, queries: ApiKeyQueries) -> None:
        self.queries = queries

    async def by_id(self, tenant: str, id_: str) -> ApiKeyState | None:
        row = await asyncio.to_thread(self.queries.by_id, tenant, id_)
        if row is None:
            return None
        return ApiKeyState(row.version, row.id, not row.is_active)

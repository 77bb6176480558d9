"""Read functions over the api_keys read model (synchronous: call from a thread)."""

from __future__ import annotations

from dataclasses import dataclass

from projections.api_keys.projector import ApiKeyRow
from projections.api_keys.stream import COLUMNS, api_key_from_db
from projections.db import row
from projections.participants.schema import TableSql

__all__ = ["ApiKeyPage", "ApiKeyQueries", "ApiKeyRow"]


@dataclass(frozen=True, slots=True)
class ApiKeyPage:
    items: list[ApiKeyRow]
    total: int


class ApiKeyQueries(TableSql):
    """Issued keys: by digest (authentication), by id, a tenant's page; ``touch`` for last use."""

    def by_hash(self, key_hash: str) -> ApiKeyRow | None:
        return self._one("key_hash = ?", (key_hash,))

    def by_id(self, tenant: str, id_: str) -> ApiKeyRow | None:
        return self._one("tenant = ? AND id = ?", (tenant, id_))

    def page(self, tenant: str, page: int, page_size: int) -> ApiKeyPage:
        found, total = self.paged(
            COLUMNS, "api_keys", "tenant = ?", (tenant,), "created_at, id", page, page_size
        )
        return ApiKeyPage([api_key_from_db(f) for f in found], total)

    def touch(self, key_hash: str, now: str, before: str) -> None:
        """Set ``last_used_at = now`` unless it is already ``before`` or later (ISO strings)."""
        with self.db.transaction(commit=True) as c:
            c.execute(
                self.sql(
                    "UPDATE {api_keys} SET last_used_at = ? "
                    "WHERE key_hash = ? AND (last_used_at IS NULL OR last_used_at < ?)"
                ),
                (now, key_hash, before),
            )

    def _one(self, where: str, params: tuple[object, ...]) -> ApiKeyRow | None:
        with self.db.transaction(commit=False) as c:
            c.execute(self.sql(f"SELECT {COLUMNS} FROM {{api_keys}} WHERE {where}"), params)  # noqa: S608
            found = row(c)
        return api_key_from_db(found) if found else None

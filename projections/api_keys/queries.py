"""Read functions over the api_keys read model, and keys' last use (synchronous: call from a thread).

Last use is not on the log (a commit per request would be absurd), so it is kept in its own
table, ``api_key_usage``, which the API creates and writes: a replay neither rebuilds nor
compares it, and it survives a replay's swap.
"""

from __future__ import annotations

from dataclasses import dataclass

from projections.api_keys.projector import ApiKeyRow
from projections.api_keys.stream import COLUMNS, api_key_from_db
from projections.db import row, rows
from projections.participants.schema import TableSql

__all__ = ["ApiKeyPage", "ApiKeyQueries", "ApiKeyRow"]


@dataclass(frozen=True, slots=True)
class ApiKeyPage:
    items: list[ApiKeyRow]
    total: int


USAGE_TABLE = """CREATE TABLE IF NOT EXISTS api_key_usage (
    key_hash TEXT NOT NULL,
    last_used_at TEXT NOT NULL,
    PRIMARY KEY (key_hash))"""
_KEY_COLUMNS = ", ".join(f"k.{c.strip()}" for c in COLUMNS.split(","))
SELECT = (
    f"SELECT {_KEY_COLUMNS}, u.last_used_at "  # noqa: S608 - fixed column names
    "FROM {api_keys} k LEFT JOIN api_key_usage u ON u.key_hash = k.key_hash"
)


class ApiKeyQueries(TableSql):
    """Issued keys: by digest (authentication), by id, a tenant's page; ``touch`` for last use."""

    def create_usage_table(self) -> None:
        with self.db.transaction(commit=True) as c:
            c.execute(USAGE_TABLE)

    def by_hash(self, key_hash: str) -> ApiKeyRow | None:
        return self._one("k.key_hash = ?", (key_hash,))

    def by_id(self, tenant: str, id_: str) -> ApiKeyRow | None:
        return self._one("k.tenant = ? AND k.id = ?", (tenant, id_))

    def page(self, tenant: str, page: int, page_size: int) -> ApiKeyPage:
        with self.db.transaction(commit=False) as c:
            c.execute(self.sql("SELECT COUNT(*) FROM {api_keys} WHERE tenant = ?"), (tenant,))
            total = int(row(c)[0])  # type: ignore[index]
            c.execute(
                self.sql(
                    f"{SELECT} WHERE k.tenant = ? ORDER BY k.created_at, k.id LIMIT ? OFFSET ?"
                ),
                (tenant, page_size, (page - 1) * page_size),
            )
            found = rows(c)
        return ApiKeyPage([api_key_from_db(f) for f in found], total)

    def touch(self, key_hash: str, now: str, before: str) -> None:
        """Set the key's last use to ``now`` unless it is already ``before`` or later (ISO)."""
        with self.db.transaction(commit=True) as c:
            c.execute(
                self.db.sql(
                    "INSERT INTO api_key_usage (key_hash, last_used_at) VALUES (?, ?) "
                    "ON CONFLICT (key_hash) DO UPDATE SET last_used_at = excluded.last_used_at "
                    "WHERE api_key_usage.last_used_at < ?"
                ),
                (key_hash, now, before),
            )

    def _one(self, where: str, params: tuple[object, ...]) -> ApiKeyRow | None:
        with self.db.transaction(commit=False) as c:
            c.execute(self.sql(f"{SELECT} WHERE {where}"), params)  # noqa: S608
            found = row(c)
        return api_key_from_db(found) if found else None

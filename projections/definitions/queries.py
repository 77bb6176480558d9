"""Read functions over the definitions read model (synchronous: call from a thread)."""

from __future__ import annotations

from dataclasses import dataclass

from projections.db import row, rows
from projections.definitions.projector import DefinitionRow
from projections.definitions.stream import COLUMNS, definition_from_db
from projections.participants.schema import TableSql

__all__ = ["DefinitionPage", "DefinitionQueries", "DefinitionRow"]


@dataclass(frozen=True, slots=True)
class DefinitionPage:
    items: list[DefinitionRow]
    total: int


class DefinitionQueries(TableSql):
    """Definitions by kind: listed with paging, by id, by code, and every active one."""

    def page(
        self, tenant: str, kind: str, page: int, page_size: int, is_active: bool | None
    ) -> DefinitionPage:
        where = "tenant = ? AND kind = ?" + ("" if is_active is None else " AND is_active = ?")
        params: tuple[object, ...] = (tenant, kind) + (() if is_active is None else (is_active,))
        found, total = self.paged(
            COLUMNS, "definitions", where, params, "created_at, code", page, page_size
        )
        return DefinitionPage([definition_from_db(f) for f in found], total)

    def by_id(self, tenant: str, kind: str, id_: str) -> DefinitionRow | None:
        return self._one("tenant = ? AND kind = ? AND id = ?", (tenant, kind, id_))

    def by_code(self, tenant: str, kind: str, code: str) -> DefinitionRow | None:
        return self._one("tenant = ? AND kind = ? AND code = ?", (tenant, kind, code))

    def active(self, tenant: str) -> list[DefinitionRow]:
        """Every active definition of the tenant, of every kind (the engine's catalog)."""
        with self.db.transaction(commit=False) as c:
            c.execute(
                self.sql(
                    f"SELECT {COLUMNS} FROM {{definitions}} "  # noqa: S608
                    "WHERE tenant = ? AND is_active = ? ORDER BY kind, created_at, code"
                ),
                (tenant, True),
            )
            return [definition_from_db(f) for f in rows(c)]

    def _one(self, where: str, params: tuple[object, ...]) -> DefinitionRow | None:
        with self.db.transaction(commit=False) as c:
            c.execute(self.sql(f"SELECT {COLUMNS} FROM {{definitions}} WHERE {where}"), params)  # noqa: S608
            found = row(c)
        return definition_from_db(found) if found else None

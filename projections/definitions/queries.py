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
    """Definitions by kind: listed with paging (tiers by level), by id, by code, every active one."""

    def page(
        self, tenant: str, kind: str, page: int, page_size: int, is_active: bool | None
    ) -> DefinitionPage:
        where = "tenant = ? AND kind = ?" + ("" if is_active is None else " AND is_active = ?")
        params: tuple[object, ...] = (tenant, kind) + (() if is_active is None else (is_active,))
        order = f"{self._level()}, created_at, code" if kind == "tier" else "created_at, code"
        found, total = self.paged(COLUMNS, "definitions", where, params, order, page, page_size)
        return DefinitionPage([definition_from_db(f) for f in found], total)

    def _level(self) -> str:
        """SQL of a tier's ``level`` (in the JSON body; the schema requires it)."""
        if self.db.kind == "postgres":
            return "CAST(CAST(body AS jsonb) ->> 'level' AS INTEGER)"
        return "CAST(json_extract(body, '$.level') AS INTEGER)"

    def by_id(self, tenant: str, kind: str, id_: str) -> DefinitionRow | None:
        return self._one("tenant = ? AND kind = ? AND id = ?", (tenant, kind, id_))

    def by_code(self, tenant: str, kind: str, code: str) -> DefinitionRow | None:
        return self._one("tenant = ? AND kind = ? AND code = ?", (tenant, kind, code))

    def by_id_or_code(self, tenant: str, kind: str, ref: str) -> DefinitionRow | None:
        """The definition whose id is ``ref``, else the one whose code is ``ref`` (ids win)."""
        return self.by_id(tenant, kind, ref) or self.by_code(tenant, kind, ref)

    def active(self, tenant: str, *, inline: bool = False) -> list[DefinitionRow]:
        """Every active definition of the tenant, of every kind (the engine's catalog).

        ``inline=True`` (SQLite only): one statement in the calling thread, no transaction
        (``Database.inline_read``); a command reads this for every decision.
        """
        sql = self.sql(
            f"SELECT {COLUMNS} FROM {{definitions}} "  # noqa: S608
            "WHERE tenant = ? AND is_active = ? ORDER BY kind, created_at, code"
        )
        if inline:
            return [definition_from_db(f) for f in self.db.inline_rows(sql, (tenant, True))]
        with self.db.transaction(commit=False) as c:
            c.execute(sql, (tenant, True))
            return [definition_from_db(f) for f in rows(c)]

    def _one(self, where: str, params: tuple[object, ...]) -> DefinitionRow | None:
        with self.db.transaction(commit=False) as c:
            c.execute(self.sql(f"SELECT {COLUMNS} FROM {{definitions}} WHERE {where}"), params)  # noqa: S608
            found = row(c)
        return definition_from_db(found) if found else None

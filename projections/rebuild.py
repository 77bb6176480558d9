"""Table-level operations of a rebuild: drop, swap in, compare and copy read-model tables."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from projections.db import Database, rows


@dataclass(frozen=True, slots=True)
class TableSet:
    """The tables of one read model and their primary keys; ``suffix`` picks a copy of them."""

    names: tuple[str, ...]
    primary_keys: dict[str, tuple[str, ...]]
    participant_tables: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Difference:
    """One row that differs between two copies of a table."""

    table: str
    key: tuple[Any, ...]
    live: tuple[Any, ...] | None
    rebuilt: tuple[Any, ...] | None

    def describe(self) -> str:
        if self.live is None:
            return f"{self.table} {self.key}: only in the rebuilt copy"
        if self.rebuilt is None:
            return f"{self.table} {self.key}: missing from the rebuilt copy"
        return f"{self.table} {self.key}: live {self.live} != rebuilt {self.rebuilt}"


def drop_tables(db: Database, tables: TableSet, suffix: str, tracking_prefix: str) -> None:
    """Remove a copy of the tables and its tracking rows (the start of a fresh rebuild)."""
    with db.transaction(commit=True) as c:
        for name in tables.names:
            c.execute(f"DROP TABLE IF EXISTS {name}{suffix}")
        c.execute(
            db.sql("DELETE FROM tracking WHERE application_name LIKE ?"), (f"{tracking_prefix}:%",)
        )


def swap_in(
    db: Database, c: Any, tables: TableSet, suffix: str, live_prefix: str, rebuilt_prefix: str
) -> None:
    """In transaction ``c``: replace the live tables and positions with the rebuilt copy."""
    for name in tables.names:
        c.execute(f"DROP TABLE IF EXISTS {name}")
        c.execute(f"ALTER TABLE {name}{suffix} RENAME TO {name}")
        rename_indexes(db, c, name, suffix)
    c.execute(db.sql("DELETE FROM tracking WHERE application_name LIKE ?"), (f"{live_prefix}:%",))
    c.execute(
        db.sql(
            "UPDATE tracking SET application_name = ? || SUBSTR(application_name, ?) "
            "WHERE application_name LIKE ?"
        ),
        (live_prefix, len(rebuilt_prefix) + 1, f"{rebuilt_prefix}:%"),
    )


def rename_indexes(db: Database, c: Any, name: str, suffix: str) -> None:
    """Give table ``name``'s indexes named ``<name><suffix>_x`` their live names ``<name>_x``.

    PostgreSQL keeps index names across a table rename (the primary key ``_pkey`` and named
    constraints such as ``_rank``), so the next rebuild could not create them again. SQLite
    renames its automatic indexes with the table; an explicit ``CREATE INDEX`` is created again
    under the live name (SQLite cannot rename an index).
    """
    if not suffix:
        return
    old = f"{name}{suffix}_"
    if db.kind == "postgres":
        c.execute(
            "SELECT indexname FROM pg_indexes "
            "WHERE schemaname = current_schema() AND tablename = %s",
            (name,),
        )
        for (index,) in rows(c):
            if index.startswith(old):
                c.execute(f'ALTER INDEX "{index}" RENAME TO "{name}_{index[len(old) :]}"')
        return
    c.execute(
        "SELECT name, sql FROM sqlite_master "
        "WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
        (name,),
    )
    for index, sql in rows(c):
        if index.startswith(old):
            new = f"{name}_{index[len(old) :]}"
            created = re.sub(
                rf'(INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?)"?{re.escape(index)}"?',
                rf'\g<1>"{new}"',
                sql,
                count=1,
                flags=re.IGNORECASE,
            )
            c.execute(f'DROP INDEX "{index}"')
            c.execute(created)


def keyed_rows(c: Any, table: str, keys: Sequence[str]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """Every row of ``table`` by its primary key."""
    columns = ", ".join(keys)
    c.execute(f"SELECT {columns}, * FROM {table} ORDER BY {columns}")  # noqa: S608
    return {found[: len(keys)]: tuple(_normal(v) for v in found[len(keys) :]) for found in rows(c)}


def compare(
    live: tuple[Database, Any],
    rebuilt: tuple[Database, Any],
    tables: TableSet,
    live_suffix: str = "",
    rebuilt_suffix: str = "",
) -> list[Difference]:
    """Every row that differs between the live and the rebuilt tables (cursors of each db)."""
    found: list[Difference] = []
    for name in tables.names:
        keys = tables.primary_keys[name]
        a = keyed_rows(live[1], f"{name}{live_suffix}", keys)
        b = keyed_rows(rebuilt[1], f"{name}{rebuilt_suffix}", keys)
        for key in sorted(set(a) | set(b), key=repr):
            if a.get(key) != b.get(key):
                found.append(Difference(name, key, a.get(key), b.get(key)))
    return found


def copy_participant_rows(
    c: Any,
    db: Database,
    tables: TableSet,
    from_suffix: str,
    tenant: str | None,
    participant_id: str | None,
) -> None:
    """Replace the live rows of the selected participants with those of a repaired copy."""
    where, params = _selection(tenant, participant_id)
    for name in tables.participant_tables:
        c.execute(db.sql(f"DELETE FROM {name} WHERE {where}"), params)  # noqa: S608
        c.execute(
            db.sql(f"INSERT INTO {name} SELECT * FROM {name}{from_suffix} WHERE {where}"),  # noqa: S608
            params,
        )


def _selection(tenant: str | None, participant_id: str | None) -> tuple[str, tuple[str, ...]]:
    clauses, params = [], []
    if tenant is not None:
        clauses.append("tenant = ?")
        params.append(tenant)
    if participant_id is not None:
        clauses.append("participant_id = ?")
        params.append(participant_id)
    return " AND ".join(clauses) or "1 = 1", tuple(params)


def _normal(value: Any) -> Any:
    # SQLite has no boolean type: compare True and 1 as equal across databases.
    return int(value) if isinstance(value, bool) else value

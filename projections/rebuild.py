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
    """One row that differs between two copies of a table.

    ``live`` and ``rebuilt`` map column -> value (None: the row is missing from that copy).
    """

    table: str
    key: tuple[Any, ...]
    live: dict[str, Any] | None
    rebuilt: dict[str, Any] | None

    def describe(self) -> str:
        """One line: ``<table> <key>: <col> live <a> != rebuilt <b>; ...`` (or which copy lacks it)."""
        where = f"{self.table} {self.key}"
        if self.live is None:
            return f"{where}: only in the rebuilt copy {self.rebuilt}"
        if self.rebuilt is None:
            return f"{where}: missing from the rebuilt copy (live {self.live})"
        changed = "; ".join(
            f"{column} live {self.live.get(column)!r} != rebuilt {self.rebuilt.get(column)!r}"
            for column in self.columns()
        )
        return f"{where}: {changed}"

    def columns(self) -> list[str]:
        """The columns whose values differ (both rows present)."""
        live, rebuilt = self.live or {}, self.rebuilt or {}
        return [c for c in dict.fromkeys([*live, *rebuilt]) if live.get(c) != rebuilt.get(c)]


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


def keyed_rows(c: Any, table: str, keys: Sequence[str]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Every row of ``table`` (column -> value) by its primary key."""
    c.execute(f"SELECT * FROM {table} ORDER BY {', '.join(keys)}")  # noqa: S608
    # eventsourcing's SQLite cursor wraps sqlite3's, which holds the column names
    names = [d[0] for d in getattr(c, "sqlite_cursor", c).description]
    found = {}
    for values in rows(c):
        row = {name: _normal(v) for name, v in zip(names, values, strict=True)}
        found[tuple(row[k] for k in keys)] = row
    return found


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

"""Tables and write statements of the read models, registered by the modules that own them.

SQL is portable (SQLite and PostgreSQL) and names tables as ``{name}`` placeholders, so a
rebuild can write the same tables under a suffix (``participants__rebuild``) and swap them in.
Feature modules register their tables and statements at import; ``projections.participants``
imports them all.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from projections.db import Database, row, rows


@dataclass(frozen=True, slots=True)
class Table:
    """One read-model table: its CREATE statement, primary key and whether rows are per participant.

    ``indexes``: CREATE INDEX statements run after ``create``; name each ``{table}_<suffix>`` so
    a rebuild's copy gets its own name and the swap renames it (projections/rebuild.py).
    """

    name: str
    create: str
    primary_key: tuple[str, ...]
    per_participant: bool = False
    indexes: tuple[str, ...] = ()


TABLES: dict[str, Table] = {}
# Statement name -> SQL with ``{table}`` placeholders and ``?`` parameters.
STATEMENTS: dict[str, str] = {}


def register_table(table: Table) -> Table:
    TABLES[table.name] = table
    return table


def register_statement(name: str, sql: str) -> str:
    STATEMENTS[name] = sql
    return name


# Statement name -> how to combine a batch's parameter rows into fewer, same-effect rows.
MERGES: dict[str, Callable[[list[tuple[Any, ...]]], list[tuple[Any, ...]]]] = {}


def register_merge(
    statement: str, merge: Callable[[list[tuple[Any, ...]]], list[tuple[Any, ...]]]
) -> None:
    MERGES[statement] = merge


@dataclass(slots=True)
class Flush:
    """What a flush hook sees of one batch, before its writes are executed.

    ``grouped``: statement name -> parameter rows, which a hook may edit; ``after``: callables
    the store runs once the writes are executed, still in the batch's transaction.
    """

    c: Any  # the batch's cursor
    sql: Callable[[str], str]  # a statement with this store's table names and placeholders
    kind: str  # "sqlite" | "postgres"
    commits: list[Any]  # the batch's commits (schemas.events.Commit)
    grouped: dict[str, list[tuple[Any, ...]]]
    after: list[Callable[[], None]]


# Run by the store on every batch, in order, before its writes (projections/participants/store.py).
FLUSH_HOOKS: list[Callable[[Flush], None]] = []


def register_flush_hook(hook: Callable[[Flush], None]) -> None:
    FLUSH_HOOKS.append(hook)


_INSERT = re.compile(r"INSERT INTO \{(\w+)\} \(([^)]*)\)\s+VALUES \(([?, ]+)\)(.*)", re.S)
_COLUMN = re.compile(r"^\s*(\w+) (TEXT|BIGINT|INTEGER|BOOLEAN|DOUBLE PRECISION)\b", re.M)
_TARGET = re.compile(r"ON CONFLICT \(([^)]*)\) DO UPDATE")


@dataclass(frozen=True, slots=True)
class Bulk:
    """A registered ``INSERT ... VALUES (?, ...)`` as one PostgreSQL statement for many rows.

    ``sql`` reads the rows from one array per column (``SELECT * FROM unnest(?::text[], ...)``),
    so a batch's rows of one statement are one execute with one binary parameter per column, instead
    of one pipelined statement per row. ``target``: positions of the ``ON CONFLICT (...) DO
    UPDATE`` columns, whose values must be unique within one execute (PostgreSQL refuses to
    update a row twice in one statement); empty for statements without a DO UPDATE.
    """

    sql: str
    width: int
    target: tuple[int, ...]

    def columns(self, params: list[tuple[Any, ...]]) -> list[list[Any]] | None:
        """The rows as one list per column; None when the DO UPDATE target repeats a key."""
        if self.target:
            keys = {tuple(p[i] for i in self.target) for p in params}
            if len(keys) < len(params):
                return None
        return [list(column) for column in zip(*params, strict=True)]


@functools.cache
def bulk_statement(name: str) -> Bulk | None:
    """The PostgreSQL bulk form of statement ``name``; None if it is not a plain INSERT."""
    found = _INSERT.fullmatch(STATEMENTS[name])
    if found is None or found.group(1) not in TABLES:
        return None
    table, listed, marks, tail = found.groups()
    columns = [c.strip() for c in listed.split(",")]
    types = dict(_COLUMN.findall(TABLES[table].create))
    if marks.count("?") != len(columns) or any(c not in types for c in columns):
        return None
    arrays = ", ".join(f"%b::{types[c].lower()}[]" for c in columns)  # binary: no quoting
    target = _TARGET.search(tail)
    keys = [k.strip() for k in target.group(1).split(",")] if target else []
    return Bulk(
        f"INSERT INTO {{{table}}} ({listed}) SELECT * FROM unnest({arrays}){tail}",  # noqa: S608
        len(columns),
        tuple(columns.index(k) for k in keys),
    )


def table_names(suffix: str = "") -> dict[str, str]:
    """Placeholder -> real table name, for ``str.format_map`` on registered SQL."""
    return {name: f"{name}{suffix}" for name in TABLES}


class TableSql:
    """SQL on one copy of the read-model tables (``suffix``), in the database's dialect."""

    def __init__(self, db: Database, *, suffix: str = "") -> None:
        self.db = db
        self.suffix = suffix
        self.names = table_names(suffix)

    def sql(self, text: str) -> str:
        """``text`` with this copy's table names and the driver's placeholders."""
        return self.db.sql(text.format_map(self.names))

    def paged(
        self,
        columns: str,
        table: str,
        where: str,
        params: tuple[Any, ...],
        order_by: str,
        page: int,
        page_size: int,
    ) -> tuple[list[tuple[Any, ...]], int]:
        """One page of ``table``'s rows matching ``where`` (1-based ``page``) and their total."""
        source = f"FROM {{{table}}} WHERE {where}"
        with self.db.transaction(commit=False) as c:
            c.execute(self.sql(f"SELECT COUNT(*) {source}"), params)  # noqa: S608
            total = row(c)[0]  # type: ignore[index]
            c.execute(
                self.sql(f"SELECT {columns} {source} ORDER BY {order_by} LIMIT ? OFFSET ?"),  # noqa: S608
                (*params, page_size, (page - 1) * page_size),
            )
            return rows(c), int(total)


PARTICIPANT_COLUMNS = (
    "tenant, participant_id, version, display_name, avatar_url, attributes, balance, "
    "total_earned, total_spent, total_events, rewards_claimed, is_active, created_at, "
    "last_seen_at, sections"
)

register_table(
    Table(
        "participants",
        """CREATE TABLE IF NOT EXISTS {participants} (
    tenant TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    display_name TEXT,
    avatar_url TEXT,
    attributes TEXT NOT NULL,
    balance BIGINT NOT NULL,
    total_earned BIGINT NOT NULL,
    total_spent BIGINT NOT NULL,
    total_events BIGINT NOT NULL,
    rewards_claimed BIGINT NOT NULL,
    is_active BOOLEAN NOT NULL,
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    sections TEXT NOT NULL,
    PRIMARY KEY (tenant, participant_id))""",
        ("tenant", "participant_id"),
        per_participant=True,
    )
)

register_table(
    Table(
        "points_ledger",
        """CREATE TABLE IF NOT EXISTS {points_ledger} (
    tenant TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    transaction_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount BIGINT NOT NULL,
    balance_after BIGINT NOT NULL,
    reason TEXT,
    metadata TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant, participant_id, version, idx))""",
        ("tenant", "participant_id", "version", "idx"),
        per_participant=True,
    )
)

register_table(
    Table(
        "commit_outcomes",
        """CREATE TABLE IF NOT EXISTS {commit_outcomes} (
    commit_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    status TEXT NOT NULL,
    command TEXT NOT NULL,
    events TEXT,
    log_partition INTEGER NOT NULL,
    log_offset BIGINT NOT NULL,
    stream TEXT NOT NULL,
    CONSTRAINT {commit_outcomes}_stream
        UNIQUE (tenant, stream, participant_id, log_partition, log_offset, status, commit_id))""",
        ("commit_id",),
        per_participant=True,
    )
)

register_table(
    Table(
        "idempotency_keys",
        """CREATE TABLE IF NOT EXISTS {idempotency_keys} (
    tenant TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    commit_id TEXT NOT NULL,
    PRIMARY KEY (tenant, participant_id, idempotency_key))""",
        ("tenant", "participant_id", "idempotency_key"),
        per_participant=True,
    )
)

# The request fingerprint of a key (schemas.codec.fingerprint), when its commit carried one.
# A table of its own rather than a column, so stores created before it need no migration: a key
# without a row here was recorded without a fingerprint and never counts as a different request.
register_table(
    Table(
        "idempotency_fingerprints",
        """CREATE TABLE IF NOT EXISTS {idempotency_fingerprints} (
    tenant TEXT NOT NULL,
    participant_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (tenant, participant_id, idempotency_key))""",
        ("tenant", "participant_id", "idempotency_key"),
        per_participant=True,
    )
)

# A record the projector could not apply (projections/poison.py says which): its position, what
# could be read of its commit (sanitised), the error and the bytes' digest, never the bytes.
# ``status``: quarantined, acknowledged (an operator saw it), retried (``verdict`` says how).
register_table(
    Table(
        "quarantined_records",
        """CREATE TABLE IF NOT EXISTS {quarantined_records} (
    topic TEXT NOT NULL,
    log_partition INTEGER NOT NULL,
    log_offset BIGINT NOT NULL,
    commit_id TEXT,
    stream TEXT,
    tenant TEXT,
    participant_id TEXT,
    command TEXT,
    recorded_at TEXT,
    kind TEXT NOT NULL,
    error_type TEXT NOT NULL,
    error TEXT NOT NULL,
    digest TEXT NOT NULL,
    size BIGINT NOT NULL,
    status TEXT NOT NULL,
    verdict TEXT,
    PRIMARY KEY (topic, log_partition, log_offset))""",
        ("topic", "log_partition", "log_offset"),
    )
)

register_statement(
    "participant_upsert",
    (
        f"INSERT INTO {{participants}} ({PARTICIPANT_COLUMNS}) "  # noqa: S608
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (tenant, participant_id) DO UPDATE SET "
        "version = excluded.version, display_name = excluded.display_name, "
        "avatar_url = excluded.avatar_url, attributes = excluded.attributes, "
        "balance = excluded.balance, total_earned = excluded.total_earned, "
        "total_spent = excluded.total_spent, total_events = excluded.total_events, "
        "rewards_claimed = excluded.rewards_claimed, is_active = excluded.is_active, "
        "created_at = excluded.created_at, last_seen_at = excluded.last_seen_at, "
        "sections = excluded.sections"
    ),
)
register_statement(
    "ledger_insert",
    (
        "INSERT INTO {points_ledger} (tenant, participant_id, version, idx, transaction_id, "
        "kind, amount, balance_after, reason, metadata, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ),
)
register_statement(
    "outcome_insert",
    (
        "INSERT INTO {commit_outcomes} (commit_id, tenant, participant_id, status, command, "
        "events, log_partition, log_offset, stream) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ),
)
register_statement(
    "idempotency_insert",
    (
        "INSERT INTO {idempotency_keys} (tenant, participant_id, idempotency_key, commit_id) "
        "VALUES (?, ?, ?, ?)"
    ),
)
register_statement(
    "fingerprint_insert",
    (
        "INSERT INTO {idempotency_fingerprints} (tenant, participant_id, idempotency_key, "
        "fingerprint) VALUES (?, ?, ?, ?)"
    ),
)
register_statement(
    "quarantine_insert",
    (
        "INSERT INTO {quarantined_records} (topic, log_partition, log_offset, commit_id, stream, "
        "tenant, participant_id, command, recorded_at, kind, error_type, error, digest, size, "
        "status, verdict) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING"
    ),
)
register_statement(
    "outcome_quarantined",
    (
        "INSERT INTO {commit_outcomes} (commit_id, tenant, participant_id, status, command, "
        "events, log_partition, log_offset, stream) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING"
    ),
)
register_statement(
    "idempotency_quarantined",
    (
        "INSERT INTO {idempotency_keys} (tenant, participant_id, idempotency_key, commit_id) "
        "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
    ),
)

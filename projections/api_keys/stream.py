"""The api_keys read model: table, statements and the stream projection that fills it.

The primary key is the key's digest, so authenticating a request is one primary-key lookup.
Last use is not here: it is not on the log, so it lives in ``api_key_usage``
(``queries.ApiKeyQueries``), which a replay neither rebuilds nor compares.
"""

from __future__ import annotations

from typing import Any

from projections.api_keys.projector import ApiKeyRow, apply_api_key
from projections.participants.projector import Write
from projections.participants.schema import Table, register_statement, register_table
from projections.streams import SelectIn, register_stream
from schemas.events import API_KEY, Commit

COLUMNS = "key_hash, tenant, id, prefix, name, scope, rate_limit, version, created_at, revoked_at"

register_table(
    Table(
        "api_keys",
        """CREATE TABLE IF NOT EXISTS {api_keys} (
    key_hash TEXT NOT NULL,
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    prefix TEXT NOT NULL,
    name TEXT NOT NULL,
    scope TEXT NOT NULL,
    rate_limit INTEGER,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    PRIMARY KEY (key_hash))""",
        ("key_hash",),
    )
)

UPSERT = register_statement(
    "api_key_upsert",
    (
        "INSERT INTO {api_keys} (key_hash, tenant, id, prefix, name, scope, rate_limit, version, "
        "created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (key_hash) DO UPDATE SET version = excluded.version, "
        "revoked_at = excluded.revoked_at"
    ),
)


def api_key_from_db(found: tuple[Any, ...]) -> ApiKeyRow:
    """A row of COLUMNS, optionally followed by the key's last use."""
    return ApiKeyRow(
        key_hash=found[0],
        tenant=found[1],
        id=found[2],
        prefix=found[3],
        name=found[4],
        scope=found[5],
        rate_limit=found[6],
        version=found[7],
        created_at=found[8],
        revoked_at=found[9],
        last_used_at=found[10] if len(found) > len(COLUMNS.split(",")) else None,
    )


class ApiKeyStream:
    """API-key commits of one batch: rows by (tenant, key id)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], ApiKeyRow | None] = {}
        self.dirty: set[tuple[str, str]] = set()

    def load(self, select_in: SelectIn, commits: list[Commit]) -> None:
        wanted = sorted({(c.tenant, c.participant_id) for c in commits})
        for ident in wanted:
            self.rows[ident] = None
        found = select_in(f"SELECT {COLUMNS} FROM {{api_keys}} WHERE (tenant, id) IN", wanted)  # noqa: S608
        for row in map(api_key_from_db, found):
            self.rows[(row.tenant, row.id)] = row

    def apply(self, commit: Commit, *, key_used: bool) -> tuple[str, list[Write]]:
        ident = (commit.tenant, commit.participant_id)
        status, row = apply_api_key(self.rows.get(ident), commit)
        if status == "applied" and row is not None:
            self.rows[ident] = row
            self.dirty.add(ident)
        return status, []

    def flush(self) -> list[Write]:
        return [
            Write(
                UPSERT,
                (
                    r.key_hash,
                    r.tenant,
                    r.id,
                    r.prefix,
                    r.name,
                    r.scope,
                    r.rate_limit,
                    r.version,
                    r.created_at,
                    r.revoked_at,
                ),
            )
            for ident in sorted(self.dirty)
            if (r := self.rows[ident]) is not None
        ]


register_stream(API_KEY, ApiKeyStream)

"""The definitions read model: table, statements and the stream projection that fills it."""

from __future__ import annotations

from typing import Any

import orjson

from projections.definitions.projector import DefinitionRow, apply_definition, stream_id
from projections.participants.projector import Write
from projections.participants.schema import Table, register_statement, register_table
from projections.streams import SelectIn, register_stream
from schemas.events import DEFINITION, Commit

COLUMNS = "tenant, kind, code, id, version, body, is_active, created_at, updated_at"

register_table(
    Table(
        "definitions",
        """CREATE TABLE IF NOT EXISTS {definitions} (
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    code TEXT NOT NULL,
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL,
    is_active BOOLEAN NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (tenant, kind, code))""",
        ("tenant", "kind", "code"),
    )
)

UPSERT = register_statement(
    "definition_upsert",
    (
        f"INSERT INTO {{definitions}} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "  # noqa: S608
        "ON CONFLICT (tenant, kind, code) DO UPDATE SET id = excluded.id, "
        "version = excluded.version, body = excluded.body, is_active = excluded.is_active, "
        "created_at = excluded.created_at, updated_at = excluded.updated_at"
    ),
)


def definition_from_db(found: tuple[Any, ...]) -> DefinitionRow:
    return DefinitionRow(
        tenant=found[0],
        kind=found[1],
        code=found[2],
        id=found[3],
        version=found[4],
        body=orjson.loads(found[5]),
        is_active=bool(found[6]),
        created_at=found[7],
        updated_at=found[8],
    )


class DefinitionStream:
    """Definition commits of one batch: rows by (tenant, kind, code)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], DefinitionRow | None] = {}
        self.dirty: set[tuple[str, str]] = set()

    def load(self, select_in: SelectIn, commits: list[Commit]) -> None:
        wanted = sorted({(c.tenant, *c.participant_id.partition(":")[::2]) for c in commits})
        for tenant, kind, code in wanted:
            self.rows[(tenant, stream_id(kind, code))] = None
        found = select_in(
            f"SELECT {COLUMNS} FROM {{definitions}} WHERE (tenant, kind, code) IN",  # noqa: S608
            wanted,
        )
        for row in map(definition_from_db, found):
            self.rows[(row.tenant, stream_id(row.kind, row.code))] = row

    def apply(self, commit: Commit, *, key_used: bool) -> tuple[str, list[Write]]:
        ident = (commit.tenant, commit.participant_id)
        status, row = apply_definition(self.rows.get(ident), commit)
        if status == "applied" and row is not None:
            self.rows[ident] = row
            self.dirty.add(ident)
        return status, []

    def flush(self) -> list[Write]:
        return [
            Write(
                UPSERT,
                (
                    r.tenant,
                    r.kind,
                    r.code,
                    r.id,
                    r.version,
                    orjson.dumps(r.body).decode(),
                    r.is_active,
                    r.created_at,
                    r.updated_at,
                ),
            )
            for ident in sorted(self.dirty)
            if (r := self.rows[ident]) is not None
        ]


register_stream(DEFINITION, DefinitionStream)

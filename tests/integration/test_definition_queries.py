"""Definition reads on both stores: tiers listed by level, lookups by id or by code."""

from __future__ import annotations

import json

import pytest

from projections.db import Database
from projections.definitions.queries import DefinitionQueries
from projections.participants.store import ParticipantStore

pytestmark = pytest.mark.integration


def put(db: Database, kind: str, code: str, id_: str, body: dict[str, object]) -> None:
    with db.transaction(commit=True) as c:
        c.execute(
            db.sql(
                "INSERT INTO definitions (tenant, kind, code, id, version, body, is_active, "
                "created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)"
            ),
            ("acme", kind, code, id_, json.dumps(body), True, "2026-01-01T00:00:00Z", "x"),
        )


def test_tiers_are_listed_by_level_and_found_by_id_or_code(
    db: Database, store: ParticipantStore
) -> None:
    for code, level in (("a", 30), ("b", 5), ("c", 12), ("d", 100)):
        put(db, "tier", code, f"id-{code}", {"name": code, "level": level})
    put(db, "badge", "z", "id-z", {"name": "z"})
    put(db, "badge", "id-z", "id-y", {"name": "y"})  # a code that is another badge's id
    queries = DefinitionQueries(db)

    listed = queries.page("acme", "tier", 1, 3, None)
    assert [t.code for t in listed.items] == ["b", "c", "a"] and listed.total == 4
    assert [t.code for t in queries.page("acme", "tier", 2, 3, None).items] == ["d"]
    assert [b.code for b in queries.page("acme", "badge", 1, 10, None).items] == ["id-z", "z"]

    assert queries.by_id_or_code("acme", "tier", "c").id == "id-c"  # type: ignore[union-attr]
    assert queries.by_id_or_code("acme", "tier", "id-c").code == "c"  # type: ignore[union-attr]
    assert queries.by_id_or_code("acme", "badge", "id-z").code == "z"  # type: ignore[union-attr]
    assert queries.by_id_or_code("acme", "tier", "nope") is None
    assert queries.by_id_or_code("globex", "tier", "c") is None


def test_the_active_catalog_reads_the_same_inline_as_in_a_transaction(
    db: Database, store: ParticipantStore
) -> None:
    put(db, "tier", "gold", "id-gold", {"name": "gold", "level": 3})
    put(db, "badge", "first", "id-first", {"name": "first"})
    queries = DefinitionQueries(db)
    pooled = queries.active("acme")
    assert [d.code for d in pooled] == ["first", "gold"]
    if db.kind == "sqlite":
        assert queries.active("acme", inline=True) == pooled
        put(db, "badge", "second", "id-second", {"name": "second"})
        assert [d.code for d in queries.active("acme", inline=True)] == ["first", "second", "gold"]

"""The write path's pure parts: PostgreSQL bulk statements and the participant row copy."""

from __future__ import annotations

import dataclasses

import projections.participants.store  # noqa: F401 - registers every table and statement
from projections.participants.projector import ParticipantRow, replace
from projections.participants.schema import STATEMENTS, bulk_statement


def test_a_plain_insert_becomes_one_unnest_of_typed_binary_arrays() -> None:
    bulk = bulk_statement("ledger_insert")
    assert bulk is not None and bulk.target == ()
    assert bulk.sql.startswith("INSERT INTO {points_ledger} (tenant, participant_id, version, ")
    assert "SELECT * FROM unnest(%b::text[], %b::text[], %b::integer[], %b::integer[]" in bulk.sql
    assert bulk.columns([("t", "u", 1, 0), ("t", "v", 2, 1)]) == [
        ["t", "t"],
        ["u", "v"],
        [1, 2],
        [0, 1],
    ]


def test_an_upsert_keeps_its_conflict_clause_and_refuses_a_repeated_key() -> None:
    bulk = bulk_statement("participant_upsert")
    assert bulk is not None and bulk.target == (0, 1)
    assert bulk.sql.endswith(
        STATEMENTS["participant_upsert"].split(") VALUES (")[1].split(") ", 1)[1]
    )
    once = [("t", "u", 1), ("t", "v", 1)]
    assert bulk.columns(once) is not None
    # PostgreSQL refuses to update one row twice in a statement: the store falls back to
    # executemany, which applies the rows in order.
    assert bulk.columns([("t", "u", 1), ("t", "u", 2)]) is None


def test_every_registered_insert_has_a_bulk_form_with_one_array_per_column() -> None:
    for name, sql in STATEMENTS.items():
        bulk = bulk_statement(name)
        assert bulk is not None, name
        assert bulk.sql.count("%b::") == sql.count("?") == bulk.width, name


def test_the_row_copy_equals_dataclasses_replace() -> None:
    row = ParticipantRow("t", "u", 3, "Ann", None, {"a": 1}, 10, 12, 2, 4, 0, True, "x", "y", {})
    changes = {"balance": 7, "version": 4, "sections": {"tier": {"code": "gold"}}}
    assert replace(row, **changes) == dataclasses.replace(row, **changes)
    assert replace(row) == row and replace(row) is not row

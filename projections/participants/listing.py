"""The admin list of participants: search, filters, sort and pages over the participants table.

One contract for SQLite and PostgreSQL; the SQL differs only where the dialects do (case
folding, JSON access). No index serves the sorts: each award changes ``balance``,
``total_earned`` and ``last_seen_at``, so indexing them would cost every projection write,
while the list is an occasional admin read scanning one tenant's rows (docs/admin-participants.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from projections.db import row, rows
from projections.participants.projector import ParticipantRow
from projections.participants.schema import PARTICIPANT_COLUMNS, TableSql
from projections.participants.stream import row_from_db

# sort key -> column; ties are broken by participant_id in the same direction
SORTS = {
    "first_seen_at": "created_at",
    "created_at": "created_at",
    "last_seen_at": "last_seen_at",
    "balance": "balance",
    "total_earned": "total_earned",
    "participant_id": "participant_id",
}
MAX_SAFE_INTEGER = 9007199254740991  # attribute numbers are within ±this (the boundary's rule)
FOLD = "gamify_fold"  # SQLite: the case folding registered on the connection (see fold)


@dataclass(frozen=True, slots=True)
class ParticipantListing:
    """What to list. ``search``: a literal substring of the id or display name, any case;
    ``attributes``: (key, value) pairs that must all hold (see ``attribute_matches``)."""

    search: str | None = None
    is_active: bool | None = None
    tier: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    sort: str = "first_seen_at"
    descending: bool = True
    page: int = 1
    page_size: int = 50


@dataclass(frozen=True, slots=True)
class ParticipantPage:
    """One page of participants and how many match in all."""

    rows: list[ParticipantRow]
    total: int


def fold(text: str) -> str:
    """Lower case character by character (PostgreSQL's ``lower()`` under a UTF-8 locale).

    Python's ``str.lower`` maps a few characters to two (``İ``) or by context (final ``Σ``);
    taking each character's first lower-case code point keeps both databases alike.
    """
    low = text.lower()
    if len(low) == len(text) and "ς" not in low:
        return low
    return "".join(ch.lower()[0] for ch in text)


def typed_value(value: str) -> Any:
    """The JSON number, ``true``, ``false`` or ``null`` that ``value`` spells, else ``...``.

    A filter ``attribute.k=30`` matches the string "30" and the number 30 (or 30.0).
    """
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return ...
    if isinstance(parsed, float) and not math.isfinite(parsed):
        return ...
    if isinstance(parsed, int) and abs(parsed) > MAX_SAFE_INTEGER:  # no attribute holds it,
        return ...  # and SQLite takes no integer beyond 64 bits
    if parsed is None or isinstance(parsed, bool | int | float):
        return parsed
    return ...


def list_participants(q: TableSql, tenant: str, spec: ParticipantListing) -> ParticipantPage:
    """The page ``spec`` asks for of ``tenant``'s participants, and the number that match."""
    where, params = _where(q.db.kind, tenant, spec)
    direction = "DESC" if spec.descending else "ASC"
    column = SORTS[spec.sort]
    order = f"participant_id {direction}"
    if column != "participant_id":
        order = f"{column} {direction}, {order}"
    source = f"FROM {{participants}} WHERE {where}"
    with q.db.transaction(commit=False) as c:
        if q.db.kind == "sqlite" and spec.search:
            connection = getattr(c, "sqlite_cursor", c).connection
            connection.create_function(FOLD, 1, _fold_sql, deterministic=True)
        c.execute(q.sql(f"SELECT COUNT(*) {source}"), params)  # noqa: S608
        total = int(row(c)[0])  # type: ignore[index]
        c.execute(
            q.sql(
                f"SELECT {PARTICIPANT_COLUMNS} {source} ORDER BY {order} LIMIT ? OFFSET ?"  # noqa: S608
            ),
            (*params, spec.page_size, (spec.page - 1) * spec.page_size),
        )
        found = [row_from_db(r) for r in rows(c)]
    return ParticipantPage(found, total)


def _fold_sql(text: str | None) -> str | None:
    return None if text is None else fold(text)


def _where(kind: str, tenant: str, spec: ParticipantListing) -> tuple[str, tuple[Any, ...]]:
    clauses, params = ["tenant = ?"], [tenant]
    if spec.search:
        if kind == "sqlite":
            clauses.append(
                f"(instr({FOLD}(participant_id), ?) > 0 "
                f"OR instr({FOLD}(COALESCE(display_name, '')), ?) > 0)"
            )
            params += [fold(spec.search)] * 2
        else:
            clauses.append(
                "(strpos(lower(participant_id), lower(?)) > 0 "
                "OR strpos(lower(COALESCE(display_name, '')), lower(?)) > 0)"
            )
            params += [spec.search] * 2
    if spec.is_active is not None:
        clauses.append("is_active = ?")
        params.append(spec.is_active)
    if spec.tier is not None and kind == "sqlite":
        clauses.append("json_extract(sections, '$.tier.code') = ?")  # no faster with _contains
        params.append(spec.tier)
    elif spec.tier is not None:  # the text test first: parsing every row's JSON costs 2x
        exact = "(CAST(sections AS jsonb) -> 'tier' ->> 'code') = ?"
        clauses.append(f"{_contains(kind, 'sections')} AND {exact}")
        params += [_pair("code", spec.tier), spec.tier]
    for key, value in spec.attributes:
        clause, values = attribute_matches(kind, key, value)
        clauses.append(clause)
        params += values
    return " AND ".join(clauses), tuple(params)


def _contains(kind: str, column: str) -> str:
    """SQL: ``column``'s text holds the parameter's text (a cheap test before parsing JSON).

    Sound because the store writes JSON columns as compact orjson (participants/stream.py), so a
    key and its string value appear as ``_pair`` spells them.
    """
    return f"{'instr' if kind == 'sqlite' else 'strpos'}({column}, ?) > 0"


def _pair(key: str, value: Any = ...) -> str:
    """``"key":`` or ``"key":<value as JSON>``, as compact orjson writes them."""
    head = orjson.dumps(key).decode() + ":"
    return head if value is ... else head + orjson.dumps(value).decode()


def attribute_matches(kind: str, key: str, value: str) -> tuple[str, list[Any]]:
    """SQL true when attribute ``key`` is the string ``value`` or the scalar ``value`` spells.

    Objects and arrays never match; an absent key never matches (not even ``null``).
    """
    typed = typed_value(value)
    clause, params = _attribute_is(kind, key, value, typed)
    near = _pair(key, value) if typed is ... else _pair(key)
    return f"{_contains(kind, 'attributes')} AND {clause}", [near, *params]


def _attribute_is(kind: str, key: str, value: str, typed: Any) -> tuple[str, list[Any]]:
    if kind == "sqlite":
        each = "EXISTS (SELECT 1 FROM json_each(attributes) a WHERE a.key = ? AND "
        if typed is ...:
            return each + "a.type = 'text' AND a.atom = ?)", [key, value]
        if typed is None or isinstance(typed, bool):
            scalar = "a.type = ?"
            wanted: Any = orjson.dumps(typed).decode()
        else:
            scalar = "a.type IN ('integer', 'real') AND a.atom = ?"
            wanted = typed
        return each + f"((a.type = 'text' AND a.atom = ?) OR ({scalar})))", [key, value, wanted]
    found = "(CAST(attributes AS jsonb) -> CAST(? AS text))"
    as_string = f"{found} = to_jsonb(CAST(? AS text))"
    if typed is ...:
        return as_string, [key, value]
    return f"({as_string} OR {found} = CAST(? AS jsonb))", [key, value, key, value]

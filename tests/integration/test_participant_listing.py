"""The admin participant list on SQLite and PostgreSQL: search, filters, sort and pages."""

from __future__ import annotations

from typing import Any

import pytest

from projections.db import Database
from projections.participants.queries import ParticipantListing, ParticipantQueries
from projections.participants.store import ParticipantStore
from schemas.events import (
    Causation,
    Commit,
    Event,
    ParticipantRegistered,
    PointsAwarded,
    TierChanged,
)
from tests.builders import TOPIC, records

ODD_KEY, ODD = 'say "hi"', 'back\\slash "q" ü\u00e9'  # escaped in JSON text
# participant id, display name, attributes, points, tier, day first seen, day last seen
PEOPLE: list[tuple[str, str | None, dict[str, Any], int, str | None, int, int]] = [
    (
        "alice",
        "Alice Smith",
        {"plan": "pro", "age": 30, "vip": True, ODD_KEY: ODD},
        100,
        "gold",
        1,
        9,
    ),
    ("bob_1", "Bob 100% Real", {"plan": "free", "age": "30", "vip": "true"}, 50, None, 2, 8),
    ("bobx1", "Ünïcode Ωmega", {"plan": "pro", "age": 30.0, "vip": False}, 50, "silver", 3, 7),
    ("c\\d", None, {"nested": {"a": 1}, "nil": None, "list": [1]}, 0, None, 4, 4),
    ("eve", "50%_off\\deal", {"plan": "PRO", "age": 31}, 70, "gold", 5, 6),
]


def commit(pid: str, version: int, day: int, *events: Event, tenant: str = "t") -> Commit:
    at = f"2026-01-{day:02d}T10:00:00Z"
    return Commit(f"{tenant}-{pid}-{version}", tenant, pid, version, at, Causation("x"), events)


def person(pid: str, name: str | None, attrs: dict[str, Any], pts: int, tier: str | None,
           first: int, last: int, tenant: str = "t") -> list[Commit]:  # fmt: skip
    made = [
        commit(
            pid, 0, first, ParticipantRegistered(display_name=name, attributes=attrs), tenant=tenant
        )
    ]
    later: list[Event] = [PointsAwarded(f"tx-{tenant}-{pid}", pts, pts)] if pts else []
    if tier:
        later.append(TierChanged(code=tier, name=tier.title(), level=1))
    if later:
        made.append(commit(pid, 1, last, *later, tenant=tenant))
    return made


@pytest.fixture
def listed(store: ParticipantStore, queries: ParticipantQueries, db: Database) -> Any:
    commits = [c for p in PEOPLE for c in person(*p)]
    commits += person("dave", "ÉCOLE Straße", {"plan": "pro"}, 10, "gold", 1, 1, tenant="other")
    store.apply_batch(TOPIC, 0, records(*commits))
    with db.transaction(commit=True) as c:
        c.execute(
            db.sql("UPDATE participants SET is_active = ? WHERE participant_id = ?"), (False, "eve")
        )

    def ids(tenant: str = "t", **spec: Any) -> list[str]:
        page = queries.listing(tenant, ParticipantListing(**spec))
        return [r.participant_id for r in page.rows]

    return ids


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("SMITH", ["alice"]),
        ("Ali", ["alice"]),
        ("B", ["bob_1", "bobx1"]),
        ("%", ["bob_1", "eve"]),  # wildcards are literal characters
        ("_", ["bob_1", "eve"]),
        ("b_1", ["bob_1"]),  # "_" would match the x of bobx1 as a LIKE wildcard
        ("\\", ["c\\d", "eve"]),
        ("%_off\\", ["eve"]),
        ("ωMEGA", ["bobx1"]),  # Unicode case folding
        ("üNÏ", ["bobx1"]),
        ("nobody", []),
    ],
)
def test_search_is_a_literal_case_insensitive_substring_of_id_or_name(
    listed: Any, search: str, expected: list[str]
) -> None:
    assert listed(search=search, sort="participant_id", descending=False) == expected


def test_a_tenant_sees_only_its_own_participants(listed: Any) -> None:
    assert listed(tenant="other", search="école") == ["dave"]
    assert listed(tenant="other", search="STRASSE") == []  # lower case, not full case folding
    assert listed(search="école") == []
    assert listed(tenant="nobody") == []


def test_filters_by_activity_and_tier_code(listed: Any) -> None:
    assert listed(is_active=False) == ["eve"]
    assert set(listed(is_active=True)) == {"alice", "bob_1", "bobx1", "c\\d"}
    assert sorted(listed(tier="gold")) == ["alice", "eve"]
    assert listed(tier="silver", is_active=True) == ["bobx1"]
    assert listed(tier="Gold") == []


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ((("plan", "pro"),), ["alice", "bobx1"]),  # exact and case-sensitive: not "PRO"
        ((("age", "30"),), ["alice", "bob_1", "bobx1"]),  # 30, "30" and 30.0
        ((("age", "30.0"),), ["alice", "bobx1"]),  # a number, or the string "30.0"
        ((("vip", "true"),), ["alice", "bob_1"]),  # true and "true"
        ((("vip", "false"),), ["bobx1"]),
        ((("nil", "null"),), ["c\\d"]),  # JSON null; an absent key never matches
        ((("nested", '{"a": 1}'),), []),  # objects and arrays never match
        ((("list", "[1]"),), []),
        ((("plan", "pro"), ("age", "30")), ["alice", "bobx1"]),  # ANDed
        ((("plan", "pro"), ("vip", "true")), ["alice"]),
        ((("plan", ""),), []),
        ((("missing", "x"),), []),
        ((("age", "18446744073709551615"),), []),  # beyond 64 bits: no error, no match
        (((ODD_KEY, ODD),), ["alice"]),  # quotes, backslashes and Unicode in key and value
        ((("a", "1"),), []),  # a nested key is no attribute
    ],
)
def test_attribute_filters_compare_strings_and_json_scalars(
    listed: Any, attributes: tuple[tuple[str, str], ...], expected: list[str]
) -> None:
    assert listed(attributes=attributes, sort="participant_id", descending=False) == expected


def test_sorts_break_ties_by_participant_id_in_the_same_direction(listed: Any) -> None:
    assert listed() == ["eve", "c\\d", "bobx1", "bob_1", "alice"]  # newest first
    assert listed(sort="first_seen_at", descending=False) == [
        "alice", "bob_1", "bobx1", "c\\d", "eve"
    ]  # fmt: skip
    assert listed(sort="balance") == ["alice", "eve", "bobx1", "bob_1", "c\\d"]
    assert listed(sort="balance", descending=False) == ["c\\d", "bob_1", "bobx1", "eve", "alice"]
    assert listed(sort="total_earned", search="bob") == ["bobx1", "bob_1"]
    assert listed(sort="last_seen_at") == ["alice", "bob_1", "bobx1", "eve", "c\\d"]
    assert listed(sort="participant_id") == ["eve", "c\\d", "bobx1", "bob_1", "alice"]


def test_pages_cover_the_list_once_and_count_every_match(
    listed: Any, queries: ParticipantQueries
) -> None:
    whole = listed(sort="balance")
    seen = []
    for page in (1, 2, 3):
        found = queries.listing("t", ParticipantListing(sort="balance", page=page, page_size=2))
        assert found.total == 5
        seen += [r.participant_id for r in found.rows]
    assert seen == whole
    beyond = queries.listing("t", ParticipantListing(page=4, page_size=2))
    assert (beyond.rows, beyond.total) == ([], 5)
    filtered = queries.listing("t", ParticipantListing(tier="gold", page_size=1))
    assert (len(filtered.rows), filtered.total) == (1, 2)


def test_rows_carry_the_read_model_fields(listed: Any, queries: ParticipantQueries) -> None:
    (alice,) = queries.listing("t", ParticipantListing(search="alice")).rows
    assert (alice.display_name, alice.balance, alice.total_earned) == ("Alice Smith", 100, 100)
    assert alice.attributes == {"plan": "pro", "age": 30, "vip": True, ODD_KEY: ODD}
    assert alice.section("tier")["code"] == "gold"
    assert (alice.created_at, alice.last_seen_at) == (
        "2026-01-01T10:00:00Z",
        "2026-01-09T10:00:00Z",
    )

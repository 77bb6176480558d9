"""Definition decisions, pure: create with a unique code, update only what changes, soft delete."""

from __future__ import annotations

import pytest

from schemas.events import DefinitionCreated, DefinitionDeactivated, DefinitionUpdated
from services.definitions.domain import (
    CodeIsImmutable,
    DefinitionNotFound,
    DefinitionState,
    DuplicateCode,
    decide_create,
    decide_delete,
    decide_update,
)

GOLD = DefinitionState(version=1, id="d-1", code="gold", body={"name": "Gold", "level": 3})


def test_a_new_code_is_created_without_its_identity_fields_in_the_body() -> None:
    body = {"code": "gold", "id": "client-id", "is_active": False, "name": "Gold", "level": 3}
    assert decide_create(None, "tier", body, "d-9") == [
        DefinitionCreated(kind="tier", id="d-9", code="gold", body={"name": "Gold", "level": 3})
    ]


def test_an_existing_code_even_inactive_is_a_duplicate_named_in_the_message() -> None:
    inactive = DefinitionState(version=2, id="d-1", code="gold", is_active=False)
    with pytest.raises(DuplicateCode) as raised:
        decide_create(inactive, "badge", {"code": "gold"}, "d-2")
    assert str(raised.value) == "A badge with code 'gold' already exists"


def test_an_update_records_only_the_fields_that_change() -> None:
    changes = {"code": "gold", "id": "other", "name": "Gold", "level": 4, "color": "#fd0"}
    assert decide_update(GOLD, changes, "tier") == [
        DefinitionUpdated(changes={"level": 4, "color": "#fd0"})
    ]


def test_an_update_that_changes_nothing_decides_nothing() -> None:
    assert decide_update(GOLD, {"name": "Gold", "code": "gold", "is_active": True}, "tier") == []
    assert decide_update(GOLD, {}, "tier") == []


def test_is_active_is_compared_with_the_state_not_the_body() -> None:
    inactive = DefinitionState(version=3, id="d-1", code="gold", body={}, is_active=False)
    assert decide_update(inactive, {"is_active": True}, "tier") == [
        DefinitionUpdated(changes={"is_active": True})
    ]
    assert decide_update(inactive, {"is_active": False}, "tier") == []


def test_a_field_set_to_null_where_it_was_absent_changes_nothing() -> None:
    assert decide_update(GOLD, {"color": None}, "tier") == []


def test_the_code_cannot_change() -> None:
    with pytest.raises(CodeIsImmutable, match="^code cannot be changed; create a new definition"):
        decide_update(GOLD, {"code": "platinum"}, "tier")


def test_deleting_deactivates_once() -> None:
    assert decide_delete(GOLD) == [DefinitionDeactivated()]
    gone = DefinitionState(version=2, id="d-1", code="gold", is_active=False)
    assert decide_delete(gone) == []


def test_not_found_names_the_kind_and_the_id() -> None:
    assert str(DefinitionNotFound("tier", "d-7")) == "Tier not found: d-7"

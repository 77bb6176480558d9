"""The participant fold: version check, idempotency, balances and the ledger."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from projections.participants.projector import (
    APPLIED,
    CONFLICT,
    DUPLICATE,
    ParticipantRow,
    apply_commit,
    draft_of,
    freeze,
    replace,
)
from schemas.events import (
    Causation,
    Commit,
    Event,
    EventTracked,
    ParticipantProfileUpdated,
    ParticipantRegistered,
    PointsAwarded,
    PointsDeducted,
)


def commit(
    version: int, *events: Event, at: str = "2026-02-14T10:00:00Z", cid: str = "c"
) -> Commit:
    return Commit(cid, "t", "u1", version, at, Causation("points.award"), events)


def test_a_registration_on_version_zero_creates_the_row_at_version_one() -> None:
    verdict = apply_commit(
        None, commit(0, ParticipantRegistered(display_name="Jane")), key_used=False
    )
    assert verdict.status == APPLIED
    assert verdict.row == ParticipantRow(
        "t",
        "u1",
        version=1,
        display_name="Jane",
        created_at="2026-02-14T10:00:00Z",
        last_seen_at="2026-02-14T10:00:00Z",
    )


def test_awards_and_deducts_move_balance_earned_and_spent_and_write_the_ledger() -> None:
    row = apply_commit(
        None,
        commit(0, ParticipantRegistered(auto_created=True), PointsAwarded("tx1", 100, 100)),
        key_used=False,
    ).row
    verdict = apply_commit(
        row,
        commit(1, PointsDeducted("tx2", 30, 70, "shop"), at="2026-02-15T00:00:00Z"),
        key_used=False,
    )
    assert verdict.row is not None
    assert (verdict.row.balance, verdict.row.total_earned, verdict.row.total_spent) == (70, 100, 30)
    assert verdict.row.version == 2
    assert verdict.row.last_seen_at == "2026-02-15T00:00:00Z"
    assert verdict.row.created_at == "2026-02-14T10:00:00Z"
    [entry] = verdict.writes
    assert entry.statement == "ledger_insert"
    assert entry.params[2:8] == (2, 0, "tx2", "deduct", -30, 70)


def test_a_commit_decided_on_an_older_version_is_a_conflict_and_changes_nothing() -> None:
    row = ParticipantRow("t", "u1", version=5, balance=10)
    verdict = apply_commit(row, commit(4, PointsAwarded("tx", 1, 11)), key_used=False)
    assert verdict.status == CONFLICT
    assert verdict.row is row
    assert verdict.writes == ()


def test_a_commit_for_a_missing_participant_must_expect_version_zero() -> None:
    verdict = apply_commit(None, commit(1, PointsAwarded("tx", 1, 1)), key_used=False)
    assert verdict.status == CONFLICT
    assert verdict.row is None


def test_a_commit_whose_idempotency_key_was_used_is_a_duplicate() -> None:
    row = ParticipantRow("t", "u1", version=1)
    verdict = apply_commit(row, commit(1, PointsAwarded("tx", 1, 1)), key_used=True)
    assert verdict.status == DUPLICATE
    assert verdict.row is row


def test_profile_updates_change_only_the_named_fields() -> None:
    row = ParticipantRow(
        "t", "u1", version=1, display_name="A", avatar_url="a.png", attributes={"x": 1}
    )
    verdict = apply_commit(
        row, commit(1, ParticipantProfileUpdated({"display_name": "B"})), key_used=False
    )
    assert verdict.row is not None
    assert (verdict.row.display_name, verdict.row.avatar_url, verdict.row.attributes) == (
        "B",
        "a.png",
        {"x": 1},
    )


def fold_profile(attributes: dict, *events: ParticipantProfileUpdated) -> dict:
    row = ParticipantRow("t", "u1", version=1, attributes=attributes)
    for n, event in enumerate(events, start=1):
        verdict = apply_commit(row, commit(n, event), key_used=False)
        assert verdict.row is not None
        row = verdict.row
    return row.attributes


def test_a_profile_update_sets_and_removes_only_its_attribute_keys() -> None:
    before = {"a": 1, "b": 2, "c": 3}
    event = ParticipantProfileUpdated(attributes_set={"b": 5, "d": 4}, attributes_removed=["c"])
    assert fold_profile(before, event) == {"a": 1, "b": 5, "d": 4}
    assert before == {"a": 1, "b": 2, "c": 3}


def test_a_replacing_profile_update_empties_the_map_first() -> None:
    event = ParticipantProfileUpdated(attributes_replaced=True, attributes_set={"z": None})
    assert fold_profile({"a": 1, "b": 2}, event) == {"z": None}
    assert fold_profile({"a": 1}, ParticipantProfileUpdated(attributes_replaced=True)) == {}


def test_a_profile_update_of_names_only_keeps_the_attributes_object() -> None:
    row = ParticipantRow("t", "u1", version=1, attributes={"a": 1})
    verdict = apply_commit(
        row, commit(1, ParticipantProfileUpdated({"avatar_url": None})), key_used=False
    )
    assert verdict.row is not None and verdict.row.attributes is row.attributes


def test_unknown_event_types_leave_the_row_unchanged_but_still_count_the_commit() -> None:
    class FutureEvent(Event):
        TYPE = "FutureEvent"

    row = ParticipantRow("t", "u1", version=1, balance=5)
    verdict = apply_commit(row, commit(1, FutureEvent()), key_used=False)
    assert verdict.status == APPLIED
    assert verdict.row is not None
    assert (verdict.row.version, verdict.row.balance) == (2, 5)


def test_the_fold_works_on_a_copy_and_returns_a_frozen_row() -> None:
    row = ParticipantRow(
        "t", "u1", version=1, attributes={"a": 1}, sections={"event_counts": {"x": 1}}
    )
    before = copy.deepcopy(row)
    verdict = apply_commit(
        row,
        commit(
            1,
            PointsAwarded("tx", 5, 5, expires_at="2026-03-01T00:00:00Z"),
            EventTracked("e1", "x", {}, "2026-02-14T09:00:00Z"),
            ParticipantProfileUpdated(attributes_set={"b": 2}),
        ),
        key_used=False,
    )
    assert row == before  # nothing of the row passed in changed, not even its dicts
    assert type(verdict.row) is ParticipantRow
    assert verdict.row is not None and verdict.row.sections["event_counts"] == {"x": 2}
    with pytest.raises(dataclasses.FrozenInstanceError):
        verdict.row.balance = 0  # type: ignore[misc]


def test_a_draft_copies_every_field_and_replace_rejects_unknown_names() -> None:
    row = ParticipantRow(**{f.name: f"v-{f.name}" for f in dataclasses.fields(ParticipantRow)})
    copied = freeze(draft_of(row))
    assert type(copied) is ParticipantRow and copied == row and copied is not row
    assert replace(row, balance=7) == dataclasses.replace(row, balance=7)
    with pytest.raises(AttributeError):
        replace(row, balances=7)
